import { AppError } from '@flowloom/errors';
import type { CheckpointRecord } from '../ports/ledger-store.js';
import type { AuditLedger, InclusionProofResult } from './ledger.js';

export interface ProvenInclusion extends InclusionProofResult {
  /** The signed checkpoint of this tree size, when one exists. */
  readonly checkpoint?: CheckpointRecord | undefined;
}

/**
 * An inclusion proof with the signed checkpoint to check it by. Without a tree size it is given
 * against the latest signed checkpoint, or a fresh one when the entry is newer. The entry and the
 * latest checkpoint are looked up together; the proof's nodes then come in one read at most.
 */
export async function proveInclusion(
  ledger: AuditLedger,
  ref: { index?: number | undefined; eventId?: string | undefined },
  treeSize?: number,
): Promise<ProvenInclusion> {
  const { index, eventId } = ref;
  let lookup: { index: number } | { eventId: string };
  if (eventId !== undefined) lookup = { eventId };
  else if (index !== undefined) lookup = { index };
  else throw new AppError('invalid_request', 'give an entry index or an event id');
  if ('index' in lookup && lookup.index >= ledger.size)
    throw new AppError('not_found', `entry ${lookup.index} is not in the ledger (size ${ledger.size})`);
  const [entry, latest] = await Promise.all([
    ledger.ledgerStore.entryRef(lookup),
    ledger.ledgerStore.latestCheckpoint(),
  ]);
  if (entry === undefined) {
    throw new AppError(
      'not_found',
      'eventId' in lookup
        ? `event ${lookup.eventId} is not in the audit ledger`
        : `entry ${lookup.index} is missing from the ledger`,
    );
  }
  if (entry.index >= ledger.size)
    throw new AppError('not_found', `entry ${entry.index} is not in the ledger (size ${ledger.size})`);
  if (treeSize !== undefined) {
    const proof = await ledger.inclusionProof(entry.index, treeSize, entry);
    return { ...proof, checkpoint: latest?.treeSize === treeSize ? latest : undefined };
  }
  const checkpoint = latest && latest.treeSize > entry.index ? latest : await ledger.checkpoint();
  return { ...(await ledger.inclusionProof(entry.index, checkpoint.treeSize, entry)), checkpoint };
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
