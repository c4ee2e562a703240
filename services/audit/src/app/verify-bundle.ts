import {
  type BundleProofs,
  type BundleReport,
  parseProofs,
  parsePublicKeyFile,
  splitEntryLines,
  type VerifierKey,
  verifyBundle,
} from '@flowloom/ledger';

export interface EvidenceBundle {
  readonly checkpoint: string;
  readonly entries: Uint8Array;
  readonly proofs?: string | undefined;
  readonly publicKey: string;
}

export interface EvidenceReport extends BundleReport {
  /** `pinned`: checked against keys the auditor supplied; `bundle`: against the bundle's own public-key. */
  readonly keys: 'pinned' | 'bundle';
}

/**
 * Checks an evidence bundle offline (BUNDLE-FORMAT.md §6): no server, no database. With
 * `trustedKeys` (a public-key file the auditor got independently) it proves origin too; with the
 * bundle's own public-key it proves integrity only.
 */
export function verifyEvidenceBundle(bundle: EvidenceBundle, trustedKeys?: string): EvidenceReport {
  const pinned = trustedKeys !== undefined;
  const fail = (message: string): EvidenceReport => ({
    ok: false,
    keys: pinned ? 'pinned' : 'bundle',
    signedBy: [],
    entryCount: 0,
    prunedCount: 0,
    problems: [{ code: 'proofs', message }],
    summary: `FAILED: ${message}`,
  });
  let keys: VerifierKey[];
  try {
    keys = parsePublicKeyFile(trustedKeys ?? bundle.publicKey);
  } catch (error) {
    return fail((error as Error).message);
  }
  let proofs: BundleProofs | undefined;
  if (bundle.proofs !== undefined) {
    try {
      proofs = parseProofs(bundle.proofs);
    } catch (error) {
      return fail((error as Error).message);
    }
  }
  const report = verifyBundle({
    entries: splitEntryLines(bundle.entries),
    checkpoint: bundle.checkpoint,
    keys,
    proofs,
  });
  return { ...report, keys: pinned ? 'pinned' : 'bundle' };
}
