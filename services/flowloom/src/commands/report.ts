import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type ComplianceReport,
  generateReport,
  HttpAuditSource,
  renderReportHtml,
  STANDARD_IDS,
  STANDARDS,
  type StandardId,
} from '@flowloom/audit';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { openSource } from './audit.js';

const HELP = `Usage: flowloom report --standard <${STANDARD_IDS.join('|')}> [--out DIR] [--json]
                       [--data-dir DIR | --database-url URL]

Writes a compliance report of the audit trail as report.json and report.html in DIR (default
./flowloom-report-<standard>-<date>): each audit-trail requirement of the standard, the evidence the
trail holds for it (with counts), what is missing, and the signed checkpoint it was computed at.

Standards:
${STANDARD_IDS.map((id) => `  ${id.padEnd(9)} ${STANDARDS[id].name}`).join('\n')}

Reads a running platform (FLOWLOOM_URL, FLOWLOOM_API_KEY), or with --data-dir / --database-url the
ledger directly. Generating a report is recorded in the trail. The report maps evidence; it is not
legal advice or a certification.`;

export const reportCommand: Command = {
  name: 'report',
  summary: 'Write a compliance report (SOX, HIPAA, Part 11, ISO 27001, GDPR) of the audit trail',
  help: HELP,
  async run(args, io) {
    const { values } = parseArgs({
      args,
      strict: true,
      options: {
        standard: { type: 'string' },
        out: { type: 'string' },
        json: { type: 'boolean' },
        'data-dir': { type: 'string' },
        'database-url': { type: 'string' },
      },
    });
    const standard = values.standard;
    if (!standard) throw new UsageError('flowloom report needs --standard');
    if (!(STANDARD_IDS as readonly string[]).includes(standard)) {
      throw new UsageError(`unknown standard "${standard}"; choose from ${STANDARD_IDS.join(', ')}`);
    }
    const id = standard as StandardId;
    const opened = await openSource(io, values);
    let report: ComplianceReport;
    try {
      if (opened.live instanceof HttpAuditSource) {
        report = await opened.live.report<ComplianceReport>(id);
      } else if (opened.service) {
        report = await generateReport(
          opened.service.ledger,
          id,
          opened.service.reportSettings,
          `cli ${io.env.USER ?? 'user'} (direct)`,
        );
      } else {
        throw new Error('no ledger to report on');
      }
    } finally {
      await opened.close();
    }
    const date = report.generatedAt.slice(0, 10).replace(/-/g, '');
    const dir = resolve(values.out ?? `flowloom-report-${id}-${date}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(dir, 'report.html'), renderReportHtml(report));
    if (values.json) {
      io.out(JSON.stringify(report, null, 2));
      return 0;
    }
    io.out(`${report.standard.name}`);
    io.out(
      `  ${report.summary.met} met, ${report.summary.partial} partial, ${report.summary.gaps} gaps of ${report.summary.requirements} requirements, at the signed checkpoint of ${report.checkpoint?.treeSize ?? 0} entries`,
    );
    for (const r of report.requirements) io.out(`  [${r.status.padEnd(7)}] ${r.reference} — ${r.title}`);
    io.out(`Written: ${join(dir, 'report.html')} and report.json`);
    return 0;
  },
};
