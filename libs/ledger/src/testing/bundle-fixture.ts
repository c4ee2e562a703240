import { type BundleProofs, prunedMarker, serializeProofs } from '../bundle-format.js';
import { signCheckpoint } from '../checkpoint.js';
import { leafHash } from '../hash.js';
import { canonicalize } from '../jcs.js';
import { type GeneratedKey, generateKey, parseVerifierKey, type VerifierKey } from '../keys.js';
import { InMemoryNodeStore } from '../memory-node-store.js';
import { MerkleLog } from '../merkle-log.js';

export const ORIGIN = 'audit.test/flowloom';

export interface Fixture {
  readonly lines: string[];
  readonly checkpoint: string;
  readonly proofs: BundleProofs;
  readonly keys: VerifierKey[];
  readonly oldKey: GeneratedKey;
  readonly newKey: GeneratedKey;
}

export function eventLine(i: number): string {
  return canonicalize({
    id: `evt-${i}`,
    type: 'dev.flowloom.gateway.request.completed.v1',
    data: { seq: i, cost: i / 7 },
  });
}

/**
 * A bundle as the exporter writes it: `size` events, earlier checkpoints every `every` entries
 * signed by an old key, the final checkpoint by the new key after a rotation.
 */
export async function buildFixture(size = 100, every = 25, pruned: readonly number[] = []): Promise<Fixture> {
  const oldKey = generateKey(ORIGIN);
  const newKey = generateKey(ORIGIN);
  const lines = Array.from({ length: size }, (_, i) => eventLine(i));
  const log = await MerkleLog.open(new InMemoryNodeStore());
  const earlier: Array<{ size: number; note: string }> = [];
  for (let i = 0; i < size; i++) {
    await log.appendEntries([lines[i] as string]);
    if (log.size % every === 0 && log.size < size) {
      const note = signCheckpoint(
        { origin: ORIGIN, size: log.size, rootHash: log.rootHash(), extensions: [] },
        [oldKey.signer],
      );
      earlier.push({ size: log.size, note });
    }
  }
  const checkpoint = signCheckpoint({ origin: ORIGIN, size, rootHash: log.rootHash(), extensions: [] }, [
    newKey.signer,
  ]);
  const leafHashes = Buffer.concat(lines.map((line) => leafHash(Buffer.from(line))));
  const proofs: BundleProofs = {
    treeSize: size,
    leafHashes,
    checkpoints: await Promise.all(
      earlier.map(async (e) => ({ checkpoint: e.note, consistency: await log.consistencyProof(e.size) })),
    ),
    inclusion: await Promise.all(
      [0, Math.floor(size / 2)].map(async (index) => ({ index, proof: await log.inclusionProof(index) })),
    ),
  };
  for (const i of pruned) lines[i] = prunedMarker(leafHash(Buffer.from(lines[i] as string)));
  return {
    lines,
    checkpoint,
    proofs,
    keys: [parseVerifierKey(newKey.verifierKey), parseVerifierKey(oldKey.verifierKey)],
    oldKey,
    newKey,
  };
}

export function proofsText(fixture: Fixture): string {
  return serializeProofs(fixture.proofs);
}
