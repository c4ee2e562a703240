import { AUDIT_VERIFICATION_COMPLETED } from '@flowloom/contracts';
import { toBase64 } from '@flowloom/ledger';
import { buildReport, type ComplianceReport } from '../domain/report.js';
import type { ReportFacts, StandardId } from '../domain/standards.js';
import type { AuditLedger } from './ledger.js';

export interface ReportSettings {
  readonly retention: Readonly<Record<string, number>>;
  readonly externalCopies: { readonly folder: boolean; readonly url: boolean };
  readonly now?: () => Date;
}

/** Gathers what the ledger holds, at a fresh signed checkpoint. */
export async function collectFacts(ledger: AuditLedger, settings: ReportSettings): Promise<ReportFacts> {
  const checkpoint = await ledger.checkpoint();
  const store = ledger.ledgerStore;
  const [stats, keys, lastVerification] = await Promise.all([
    store.stats(),
    ledger.verifierKeys(),
    ledger.query({ type: AUDIT_VERIFICATION_COMPLETED, limit: 1, order: 'desc' }),
  ]);
  const verification = lastVerification[0];
  let verificationFacts: ReportFacts['lastVerification'] = null;
  if (verification?.entry) {
    const data = (JSON.parse(verification.entry) as { data?: { ok?: unknown } }).data;
    verificationFacts = { at: verification.time, ok: data?.ok === true, actor: verification.actor };
  }
  return {
    origin: ledger.origin,
    generatedAt: settings.now?.() ?? new Date(),
    checkpoint: {
      treeSize: checkpoint.treeSize,
      rootHash: toBase64(checkpoint.rootHash),
      keyId: checkpoint.keyId,
      issuedAt: checkpoint.issuedAt,
      note: checkpoint.note,
    },
    entries: stats.entries,
    pruned: stats.pruned,
    firstEvent: stats.firstEvent,
    lastEvent: stats.lastEvent,
    countsByType: Object.fromEntries(stats.byType.map((t) => [t.type, t.count])),
    withActor: stats.withActor,
    withKey: stats.withKey,
    checkpoints: stats.checkpoints,
    lastCheckpointAt: stats.lastCheckpointAt,
    guards: stats.guards,
    verifierKeys: keys.length,
    retention: settings.retention,
    externalCopies: settings.externalCopies,
    lastVerification: verificationFacts,
    prunings: stats.prunings,
  };
}

/** Builds a compliance report and records that it was generated, by whom. */
export async function generateReport(
  ledger: AuditLedger,
  standard: StandardId,
  settings: ReportSettings,
  actor: string,
): Promise<ComplianceReport> {
  const report = buildReport(standard, await collectFacts(ledger, settings));
  await ledger.record(
    { kind: 'report', standard, treeSize: report.checkpoint?.treeSize ?? 0, gaps: report.summary.gaps },
    actor,
  );
  return report;
}
