/**
 * Stable ledger failure codes. The audit service maps them to its own error codes, so a code is
 * never renamed; add new ones.
 */
export type LedgerErrorCode =
  | 'invalid_argument'
  | 'not_canonicalizable'
  | 'malformed_note'
  | 'malformed_checkpoint'
  | 'invalid_key'
  | 'unverified_note'
  | 'bad_signature'
  | 'malformed_bundle'
  | 'storage';

export class LedgerError extends Error {
  readonly code: LedgerErrorCode;

  constructor(code: LedgerErrorCode, message: string) {
    super(message);
    this.name = 'LedgerError';
    this.code = code;
  }
}

export function isLedgerError(value: unknown): value is LedgerError {
  return value instanceof LedgerError;
}
