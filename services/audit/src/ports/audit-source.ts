import type {
  AuditExportCreated,
  AuditReportGenerated,
  AuditVerificationCompleted,
} from '@flowloom/contracts';
import type { BundlePage, CheckpointRecord, EntryFilter, LedgerStats, NodeTile } from './ledger-store.js';

/** Something done to the trail that the trail itself records (payloads: @flowloom/contracts audit-events). */
export type AuditActivity =
  | ({ readonly kind: 'export' } & Omit<AuditExportCreated, 'actor'>)
  | ({ readonly kind: 'verification' } & Omit<AuditVerificationCompleted, 'actor' | 'outcome'>)
  | ({ readonly kind: 'report' } & Omit<AuditReportGenerated, 'actor'>);

/**
 * Read access to a ledger for verification, export and reports: the local store (the service
 * itself, or the CLI opening a data folder or a database) or a running platform's admin API. The
 * verifier trusts none of it: everything is recomputed and checked against signed checkpoints.
 */
export interface AuditSource {
  readonly description: string;
  origin(): Promise<string>;
  /** Verifier keys (vkey text), current first. */
  verifierKeys(): Promise<string[]>;
  latestCheckpoint(): Promise<CheckpointRecord | undefined>;
  /** Checkpoints in issue order after `afterId` (0 = from the start). */
  checkpoints(afterId: number, limit: number): Promise<CheckpointRecord[]>;
  /** A fresh checkpoint covering everything appended so far (the latest one when nothing is new). */
  issueCheckpoint(): Promise<CheckpointRecord>;
  treeSize(): Promise<number>;
  bundlePage(start: number, end: number, filter?: EntryFilter): Promise<BundlePage>;
  tiles(start: number, end: number): Promise<NodeTile[]>;
  consistencyProof(size1: number, size2: number): Promise<Uint8Array[]>;
  inclusionProofs(indexes: readonly number[], treeSize: number): Promise<Uint8Array[][]>;
  stats(): Promise<LedgerStats>;
  /** Records the activity in the ledger, attributed to `actor` (or the authenticated caller). */
  record(activity: AuditActivity, actor: string): Promise<void>;
}
