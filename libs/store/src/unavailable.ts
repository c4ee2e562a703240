import { AppError } from '@flowloom/errors';

/** Seconds a caller should wait before retrying a call that found the database unavailable. */
const RETRY_AFTER_SECONDS = 2;

/**
 * The database could not be reached, or dropped the connection: a transient outage, not a fault of
 * the call. It maps to HTTP 503 and gRPC UNAVAILABLE with `retry-after`, in every service, instead
 * of a 500. `reason` is short and names no host; the driver's own error is the `cause`.
 */
export class DatabaseUnavailableError extends AppError {
  constructor(
    readonly reason: string,
    cause: unknown,
  ) {
    super('unavailable', `The database is unavailable (${reason}); the call can be retried shortly.`, {
      retryAfterSeconds: RETRY_AFTER_SECONDS,
      cause,
    });
    this.name = 'DatabaseUnavailableError';
  }
}

// SQLSTATE: class 08 is "connection exception"; 57P01-57P03 a server shutting down, crashed or
// starting up; 53300 no connection slot left. All pass once the server is back.
const SQLSTATE_REASONS: Record<string, string> = {
  '57P01': 'the server is shutting down',
  '57P02': 'the server crashed',
  '57P03': 'the server is not accepting connections yet',
  '53300': 'too many connections',
};

const ERRNO_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
};

// What `pg` reports without any code when a connection dies or cannot be had in time.
const PG_MESSAGES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^Connection terminated due to connection timeout/, 'connection timed out'],
  [/^Connection terminated/, 'connection terminated'],
  [/^timeout exceeded when trying to connect/, 'connection timed out'],
  [/encountered a connection error and is not queryable/, 'connection terminated'],
];

/** Why `error` means the database is unreachable, or undefined for any other failure. */
export function unavailableReason(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('08')) return 'connection failure';
    const reason = SQLSTATE_REASONS[code] ?? ERRNO_REASONS[code];
    if (reason) return reason;
  }
  // Node reports a connection tried on several addresses (happy eyeballs) as an AggregateError.
  if (error instanceof AggregateError) {
    const reasons = error.errors.map(unavailableReason);
    if (reasons.length > 0 && reasons.every((r) => r !== undefined)) return reasons[0];
  }
  for (const [pattern, reason] of PG_MESSAGES) if (pattern.test(error.message)) return reason;
  return undefined;
}

/** `error` as a DatabaseUnavailableError when it means the database is unreachable; unchanged otherwise. */
export function classifyDbError(error: unknown): unknown {
  if (error instanceof AppError) return error;
  const reason = unavailableReason(error);
  return reason === undefined ? error : new DatabaseUnavailableError(reason, error);
}
