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
    const [proof, checkpoint] = await Promise.all([
      ledger.inclusionProof(entry.index, treeSize, entry),
      latest?.treeSize === treeSize ? latest : signedAt(ledger, treeSize),
    ]);
    return { ...proof, checkpoint };
  }
  const checkpoint = latest && latest.treeSize > entry.index ? latest : await ledger.checkpoint();
  return { ...(await ledger.inclusionProof(entry.index, checkpoint.treeSize, entry)), checkpoint };
}

/**
 * The signed checkpoint of a size the caller chose, so a proof against an earlier tree still comes
 * with the note that authenticates its root (none for a size that was never signed). A size beyond
 * the ledger is not looked up: the proof refuses it.
 */
async function signedAt(ledger: AuditLedger, treeSize: number): Promise<CheckpointRecord | undefined> {
  if (!Number.isSafeInteger(treeSize) || treeSize < 0 || treeSize > ledger.size) return undefined;
  return ledger.ledgerStore.checkpointAt(treeSize);
}

export async function proveConsistency(ledger: AuditLedger, from: number, to?: number) {
  let checkpoint: CheckpointRecord | undefined;
  let size = to;
  if (size === undefined) {
    checkpoint = (await ledger.ledgerStore.latestCheckpoint()) ?? (await ledger.checkpoint());
    size = checkpoint.treeSize;
  } else {
    checkpoint = await signedAt(ledger, size);
  }
  if (from > size) throw new AppError('invalid_request', `from (${from}) must not exceed to (${size})`);
  return { ...(await ledger.consistencyProof(from, size)), checkpoint };
}
