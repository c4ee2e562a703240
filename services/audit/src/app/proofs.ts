import { AppError } from '@flowloom/errors';
import type { CheckpointRecord } from '../ports/ledger-store.js';
import type { AuditLedger, InclusionProofResult } from './ledger.js';

/**
 * The tree size proofs are given against when the caller names none: the latest signed checkpoint,
 * or a fresh one when the entry is newer, so every proof comes with a signed root to check it by.
 */
async function signedSizeCovering(ledger: AuditLedger, index: number): Promise<CheckpointRecord> {
  const latest = await ledger.ledgerStore.latestCheckpoint();
  if (latest && latest.treeSize > index) return latest;
  return ledger.checkpoint();
}

export interface ProvenInclusion extends InclusionProofResult {
  /** The signed checkpoint of this tree size, when one exists. */
  readonly checkpoint?: CheckpointRecord | undefined;
}

export async function proveInclusion(
  ledger: AuditLedger,
  ref: { index?: number | undefined; eventId?: string | undefined },
  treeSize?: number,
): Promise<ProvenInclusion> {
  let index = ref.index;
  if (ref.eventId !== undefined) {
    index = await ledger.ledgerStore.indexOfEvent(ref.eventId);
    if (index === undefined)
      throw new AppError('not_found', `event ${ref.eventId} is not in the audit ledger`);
  }
  if (index === undefined) throw new AppError('invalid_request', 'give an entry index or an event id');
  if (index >= ledger.size)
    throw new AppError('not_found', `entry ${index} is not in the ledger (size ${ledger.size})`);
  if (treeSize !== undefined) {
    const proof = await ledger.inclusionProof(index, treeSize);
    const latest = await ledger.ledgerStore.latestCheckpoint();
    return { ...proof, checkpoint: latest?.treeSize === treeSize ? latest : undefined };
  }
  const checkpoint = await signedSizeCovering(ledger, index);
  return { ...(await ledger.inclusionProof(index, checkpoint.treeSize)), checkpoint };
}

export async function proveConsistency(ledger: AuditLedger, from: number, to?: number) {
  let checkpoint: CheckpointRecord | undefined;
  let size = to;
  if (size === undefined) {
    checkpoint = (await ledger.ledgerStore.latestCheckpoint()) ?? (await ledger.checkpoint());
    size = checkpoint.treeSize;
  }
  if (from > size) throw new AppError('invalid_request', `from (${from}) must not exceed to (${size})`);
  return { ...(await ledger.consistencyProof(from, size)), checkpoint };
}
