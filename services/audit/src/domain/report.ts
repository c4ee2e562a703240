import {
  evaluateStandard,
  type ReportFacts,
  type RequirementResult,
  STANDARDS,
  type StandardId,
} from './standards.js';

export const REPORT_FORMAT = 'flowloom.audit.report.v1';

export interface ComplianceReport {
  readonly format: typeof REPORT_FORMAT;
  readonly standard: { readonly id: StandardId; readonly name: string; readonly scope: string };
  readonly generatedAt: string;
  readonly origin: string;
  /** The signed checkpoint the report was computed at: its counts are of this tree. */
  readonly checkpoint: {
    readonly treeSize: number;
    readonly rootHash: string;
    readonly keyId: string;
    readonly issuedAt: string;
    readonly note: string;
  } | null;
  readonly summary: {
    readonly requirements: number;
    readonly met: number;
    readonly partial: number;
    readonly gaps: number;
  };
  readonly requirements: readonly RequirementResult[];
  readonly ledger: {
    readonly entries: number;
    readonly pruned: number;
    readonly firstEvent: string | null;
    readonly lastEvent: string | null;
    readonly checkpoints: number;
    readonly countsByType: Readonly<Record<string, number>>;
    readonly retention: Readonly<Record<string, number>>;
  };
  readonly disclaimer: string;
}

export function buildReport(standard: StandardId, facts: ReportFacts): ComplianceReport {
  const definition = STANDARDS[standard];
  const requirements = evaluateStandard(definition, facts);
  const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);
  return {
    format: REPORT_FORMAT,
    standard: { id: definition.id, name: definition.name, scope: definition.scope },
    generatedAt: facts.generatedAt.toISOString(),
    origin: facts.origin,
    checkpoint: facts.checkpoint
      ? { ...facts.checkpoint, issuedAt: facts.checkpoint.issuedAt.toISOString() }
      : null,
    summary: {
      requirements: requirements.length,
      met: requirements.filter((r) => r.status === 'met').length,
      partial: requirements.filter((r) => r.status === 'partial').length,
      gaps: requirements.filter((r) => r.status === 'gap').length,
    },
    requirements,
    ledger: {
      entries: facts.entries,
      pruned: facts.pruned,
      firstEvent: iso(facts.firstEvent),
      lastEvent: iso(facts.lastEvent),
      checkpoints: facts.checkpoints,
      countsByType: facts.countsByType,
      retention: facts.retention,
    },
    disclaimer:
      'An evidence map generated from the FlowLoom audit trail: it shows what the trail holds for each requirement and what it does not. It is not legal advice or a certification; controls outside FlowLoom must be evidenced separately.',
  };
}

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

const STATUS_LABEL = { met: 'Met', partial: 'Partial', gap: 'Gap' } as const;

/** A self-contained HTML page (no scripts, no external resources) of the report. */
export function renderReportHtml(report: ComplianceReport): string {
  const e = escapeHtml;
  const rows = report.requirements
    .map(
      (r) => `
    <section class="req ${r.status}">
      <h3><span class="badge">${STATUS_LABEL[r.status]}</span> ${e(r.reference)} — ${e(r.title)}</h3>
      <p class="text">${e(r.requirement)}</p>
      <h4>Evidence</h4>
      <ul>${r.evidence.map((x) => `<li>${e(x)}</li>`).join('') || '<li>None.</li>'}</ul>
      ${r.gaps.length > 0 ? `<h4>Gaps and limits</h4><ul>${r.gaps.map((x) => `<li>${e(x)}</li>`).join('')}</ul>` : ''}
      ${
        Object.keys(r.counts).length > 0
          ? `<table class="counts">${Object.entries(r.counts)
              .map(([k, v]) => `<tr><th>${e(k)}</th><td>${v.toLocaleString('en-US')}</td></tr>`)
              .join('')}</table>`
          : ''
      }
    </section>`,
    )
    .join('\n');
  const types = Object.entries(report.ledger.countsByType)
    .map(([t, n]) => `<tr><td><code>${e(t)}</code></td><td>${n.toLocaleString('en-US')}</td></tr>`)
    .join('');
  const cp = report.checkpoint;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${e(report.standard.name)} — FlowLoom audit trail report</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
  h1 { font-size: 1.5rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ccc; }
  .req { border: 1px solid #ddd; border-left-width: 6px; padding: .5rem 1rem; margin: 1rem 0; border-radius: 4px; }
  .req.met { border-left-color: #2e7d32; } .req.partial { border-left-color: #ed8c00; } .req.gap { border-left-color: #c62828; }
  .badge { font-size: .8rem; padding: .1rem .5rem; border-radius: 3px; color: #fff; background: #555; }
  .met .badge { background: #2e7d32; } .partial .badge { background: #ed8c00; } .gap .badge { background: #c62828; }
  .text { color: #444; font-style: italic; } table { border-collapse: collapse; } td, th { padding: .15rem .6rem; text-align: left; }
  .counts th { font-weight: normal; color: #555; } pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; }
</style>
</head>
<body>
<h1>${e(report.standard.name)}</h1>
<p>${e(report.standard.scope)}</p>
<p>Log <code>${e(report.origin)}</code>, generated ${e(report.generatedAt)}.
${cp ? `Computed at the signed checkpoint of <strong>${cp.treeSize.toLocaleString('en-US')}</strong> entries (root <code>${e(cp.rootHash)}</code>, key ${e(cp.keyId)}, signed ${e(cp.issuedAt)}).` : '<strong>No signed checkpoint exists.</strong>'}</p>
<p><strong>${report.summary.met}</strong> met, <strong>${report.summary.partial}</strong> partial, <strong>${report.summary.gaps}</strong> gaps of ${report.summary.requirements} requirements.</p>
<h2>Requirements</h2>
${rows}
<h2>The trail</h2>
<p>${report.ledger.entries.toLocaleString('en-US')} entries (${report.ledger.pruned.toLocaleString('en-US')} pruned by retention) from ${e(report.ledger.firstEvent ?? '—')} to ${e(report.ledger.lastEvent ?? '—')}; ${report.ledger.checkpoints.toLocaleString('en-US')} signed checkpoints.</p>
<table>${types}</table>
${cp ? `<h2>Checkpoint</h2><pre>${e(cp.note)}</pre><p>Verify it, and any evidence bundle, with <code>flowloom audit verify</code>.</p>` : ''}
<p><small>${e(report.disclaimer)}</small></p>
</body>
</html>
`;
}
