import type { AuditActivity, AuditSource } from '../ports/audit-source.js';
import type {
  BundlePage,
  CheckpointRecord,
  EntryFilter,
  LedgerStats,
  NodeTile,
} from '../ports/ledger-store.js';
import type { AuditLedger } from './ledger.js';

/** An AuditSource over a ledger opened in this process (the service, or the CLI on a data folder). */
export class LocalAuditSource implements AuditSource {
  constructor(
    private readonly ledger: AuditLedger,
    readonly description: string,
  ) {}

  async origin(): Promise<string> {
    return this.ledger.origin;
  }

  verifierKeys(): Promise<string[]> {
    return this.ledger.verifierKeys();
  }

  async latestCheckpoint(): Promise<CheckpointRecord | undefined> {
    return this.ledger.ledgerStore.latestCheckpoint();
  }

  checkpoints(afterId: number, limit: number): Promise<CheckpointRecord[]> {
    return this.ledger.ledgerStore.checkpoints(afterId, limit);
  }

  issueCheckpoint(): Promise<CheckpointRecord> {
    return this.ledger.checkpoint();
  }

  treeSize(): Promise<number> {
    return this.ledger.ledgerStore.treeSize();
  }

  bundlePage(start: number, end: number, filter?: EntryFilter): Promise<BundlePage> {
    return this.ledger.ledgerStore.bundlePage(start, end, filter);
  }

  tiles(start: number, end: number): Promise<NodeTile[]> {
    return this.ledger.ledgerStore.tiles(start, end);
  }

  async consistencyProof(size1: number, size2: number): Promise<Uint8Array[]> {
    return (await this.ledger.consistencyProof(size1, size2)).proof;
  }

  inclusionProofs(indexes: readonly number[], treeSize: number): Promise<Uint8Array[][]> {
    return this.ledger.inclusionProofs(indexes, treeSize);
  }

  stats(): Promise<LedgerStats> {
    return this.ledger.ledgerStore.stats();
  }

  record(activity: AuditActivity, actor: string): Promise<void> {
    return this.ledger.record(activity, actor);
  }
}
