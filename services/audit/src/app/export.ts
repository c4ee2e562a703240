import { formatPublicKeyFile, type InclusionEvidence, serializeProofs, toBase64 } from '@flowloom/ledger';
import { HASH_BYTES, nodeInTile } from '../domain/tiles.js';
import type { AuditSource } from '../ports/audit-source.js';
import type { BundleWriter } from '../ports/bundle-writer.js';
import type { CheckpointRecord, EntryFilter } from '../ports/ledger-store.js';

export const MANIFEST_FORMAT = 'flowloom.audit.export.v1';

export interface ExportOptions {
  /** Only entries matching it are exported in full; the others become markers (withheld). */
  readonly filter?: EntryFilter | undefined;
  readonly pageSize?: number;
  /** Inclusion proofs written for exported entries of a filtered export (default 10,000). */
  readonly maxInclusionProofs?: number;
  /** Earlier checkpoints (with consistency proofs) written to proofs.json (default 32). */
  readonly maxEarlierCheckpoints?: number;
  readonly onProgress?: (done: number, total: number) => void;
  readonly now?: () => Date;
}

export interface ExportResult {
  readonly treeSize: number;
  readonly checkpoint: CheckpointRecord;
  /** Entries written in full. */
  readonly exported: number;
  /** Entries a filter left out (written as markers). */
  readonly withheld: number;
  /** Entries whose content retention removed (markers too). */
  readonly pruned: number;
  readonly inclusionProofs: number;
  readonly earlierCheckpoints: number;
  readonly filter: Record<string, string>;
}

/** The filter as strings, for the manifest and the export event. */
export function describeFilter(filter: EntryFilter | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(filter ?? {})) {
    if (value === undefined || value === '') continue;
    out[name] = value instanceof Date ? value.toISOString() : String(value);
  }
  return out;
}

/**
 * Writes an evidence bundle (libs/ledger/BUNDLE-FORMAT.md) of the whole log up to a fresh signed
 * checkpoint. A filtered export stays verifiable: entries.jsonl still has one line per entry of
 * the tree, but entries outside the filter are replaced by markers carrying their leaf hash
 * (`{"$pruned":"<hex>"}`, the same marker retention uses). The tree, and so the signed root, is
 * recomputed over all lines; the withheld content cannot be read, and the exported entries cannot
 * be changed, dropped or reordered without the bundle failing. proofs.json adds an inclusion proof
 * per exported entry (up to a limit), so each can also be checked on its own, and manifest.json
 * says what was filtered and how many entries were withheld.
 */
export async function exportBundle(
  source: AuditSource,
  writer: BundleWriter,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const pageSize = options.pageSize ?? 10_000;
  const filter = options.filter;
  const filtered = Object.keys(describeFilter(filter)).length > 0;
  const maxProofs = options.maxInclusionProofs ?? 10_000;
  const checkpoint = await source.issueCheckpoint();
  const size = checkpoint.treeSize;
  const keys = await source.verifierKeys();

  let exported = 0;
  let pruned = 0;
  const proven: number[] = [];
  for (let start = 0; start < size; start += pageSize) {
    const end = Math.min(size, start + pageSize);
    const page = await source.bundlePage(start, end, filter);
    if (page.lines.length !== end - start || page.indexes.some((index, i) => index !== start + i)) {
      throw new Error(
        `the ledger's entries ${start}..${end - 1} are not what the log committed (${page.lines.length} rows): run flowloom audit verify`,
      );
    }
    await writer.appendLines('entries.jsonl', page.lines);
    exported += page.matched.length;
    pruned += page.pruned;
    if (filtered) for (const index of page.matched) if (proven.length < maxProofs) proven.push(index);
    options.onProgress?.(end, size);
  }
  if (size === 0) await writer.appendLines('entries.jsonl', []);

  const leafHashes = new Uint8Array(size * HASH_BYTES);
  let filledTo = 0;
  for (let start = 0; start < size; start += pageSize) {
    const end = Math.min(size, start + pageSize);
    for (const tile of await source.tiles(start, end)) {
      for (let leaf = Math.max(tile.startSize, filledTo); leaf < Math.min(tile.endSize, size); leaf++) {
        const hash = nodeInTile(tile, 0, leaf);
        if (!hash) throw new Error(`the node store lacks leaf ${leaf}: run flowloom audit verify`);
        leafHashes.set(hash, leaf * HASH_BYTES);
        filledTo = leaf + 1;
      }
    }
  }
  if (filledTo !== size)
    throw new Error(`the node store covers ${filledTo} of ${size} entries: run flowloom audit verify`);

  const earlier = await pickEarlierCheckpoints(source, checkpoint, options.maxEarlierCheckpoints ?? 32);
  const checkpoints = [];
  for (const record of earlier) {
    checkpoints.push({
      checkpoint: record.note,
      consistency: await source.consistencyProof(record.treeSize, size),
    });
  }
  const inclusion: InclusionEvidence[] = [];
  for (let at = 0; at < proven.length; at += 256) {
    const chunk = proven.slice(at, at + 256);
    const proofs = await source.inclusionProofs(chunk, size);
    chunk.forEach((index, i) => {
      inclusion.push({ index, proof: proofs[i] ?? [] });
    });
  }

  await writer.writeFile('checkpoint', checkpoint.note);
  await writer.writeFile(
    'proofs.json',
    serializeProofs({ treeSize: size, leafHashes, checkpoints, inclusion }),
  );
  await writer.writeFile('public-key', formatPublicKeyFile(keys));
  const withheld = size - exported - pruned;
  const description = describeFilter(filter);
  await writer.writeFile(
    'manifest.json',
    `${JSON.stringify(
      {
        format: MANIFEST_FORMAT,
        origin: (await source.origin()) ?? '',
        treeSize: size,
        rootHash: toBase64(checkpoint.rootHash),
        checkpointKeyId: checkpoint.keyId,
        createdAt: (options.now?.() ?? new Date()).toISOString(),
        source: source.description,
        filter: filtered ? description : null,
        entries: { total: size, exported, withheld, pruned },
        inclusionProofs: inclusion.length,
        earlierCheckpoints: checkpoints.length,
        note: 'entries.jsonl has one line per entry of the signed tree. Lines {"$pruned":"<leaf hash>"} stand for entries whose content retention removed or this export withheld (filter); they still count in the tree, so nothing can be changed, removed, inserted or reordered without verification failing. Verify with: flowloom audit verify <this folder> --key <trusted public key file>',
      },
      null,
      2,
    )}\n`,
  );
  await writer.close();
  return {
    treeSize: size,
    checkpoint,
    exported,
    withheld,
    pruned,
    inclusionProofs: inclusion.length,
    earlierCheckpoints: checkpoints.length,
    filter: description,
  };
}

/**
 * Earlier checkpoints to prove the log only grew: the first one signed by each key (so a bundle
 * shows key rotations) and others spread evenly over the log's history.
 */
async function pickEarlierCheckpoints(
  source: AuditSource,
  final: CheckpointRecord,
  limit: number,
): Promise<CheckpointRecord[]> {
  if (limit <= 0) return [];
  const all: CheckpointRecord[] = [];
  for (let after = 0; ; ) {
    const page = await source.checkpoints(after, 1_000);
    if (page.length === 0) break;
    for (const record of page) {
      if (record.treeSize < final.treeSize && record.id !== final.id) all.push(record);
    }
    after = (page[page.length - 1] as CheckpointRecord).id;
    if (all.length > 100_000) break;
  }
  const chosen = new Map<number, CheckpointRecord>();
  const firstOfKey = new Map<string, CheckpointRecord>();
  for (const record of all) if (!firstOfKey.has(record.keyId)) firstOfKey.set(record.keyId, record);
  for (const record of firstOfKey.values()) if (chosen.size < limit) chosen.set(record.id, record);
  const step = Math.max(1, Math.ceil(all.length / Math.max(1, limit - chosen.size)));
  for (let i = all.length - 1; i >= 0 && chosen.size < limit; i -= step) {
    const record = all[i] as CheckpointRecord;
    chosen.set(record.id, record);
  }
  return [...chosen.values()].sort((a, b) => a.id - b.id);
}
