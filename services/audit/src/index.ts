export { type BundleFiles, DirectoryBundleWriter, readBundleDir } from './adapters/bundle-files.js';
export { checkpointFileName } from './adapters/checkpoint-sinks.js';
export { FileSigningKeyStore } from './adapters/file-signing-key-store.js';
export { filterParams, HttpAuditSource } from './adapters/http-audit-source.js';
export {
  NO_WRITER_ROLE,
  openLedgerConnection,
  prepareLedgerWriterRole,
  withRole,
} from './adapters/ledger-writer-db.js';
export { auditMigrations, LEDGER_TABLES, ledgerWriterRoleSql } from './adapters/migrations.js';
export { SqlLedgerStore } from './adapters/sql-ledger-store.js';
export { createVerifyWorker, type VerifyWorker } from './adapters/verify-worker.js';
export {
  describeFilter,
  type ExportOptions,
  type ExportResult,
  exportBundle,
  MANIFEST_FORMAT,
} from './app/export.js';
export { type AppendOutcome, AuditLedger, type InclusionProofResult } from './app/ledger.js';
export { LocalAuditSource } from './app/local-source.js';
export { collectFacts, generateReport, type ReportSettings } from './app/report.js';
export { type EvidenceReport, verifyEvidenceBundle } from './app/verify-bundle.js';
export {
  hashLinesHere,
  type LogProblem,
  type LogReport,
  type VerifyProgress,
  verifyLog,
} from './app/verify-log.js';
export { AUDIT_CONSUMER_GROUP } from './consumers/bus-consumer.js';
export { buildReport, type ComplianceReport, REPORT_FORMAT, renderReportHtml } from './domain/report.js';
export { isSecretField } from './domain/scrub.js';
export { STANDARD_IDS, STANDARDS, type StandardId } from './domain/standards.js';
export { nodeInTile, nodePosition, packTile } from './domain/tiles.js';
export { auditGrpcClient } from './grpc/server.js';
export { auditOpenApi } from './http/openapi.js';
export type { AuditHttpPlugin } from './http/routes.js';
export {
  type AuditOptions,
  type AuditService,
  auditPaths,
  embeddedOwner,
  openAudit,
  openAuditDirect,
  type StandaloneAudit,
  startAudit,
} from './main.js';
export type { AdminAuthorizer } from './ports/admin.js';
export type { AuditActivity, AuditSource } from './ports/audit-source.js';
export type { CheckpointRecord, EntryFilter, EntryView, LedgerStats } from './ports/ledger-store.js';
