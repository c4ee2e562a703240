import { describe, expect, it } from 'vitest';
import { buildReport, renderReportHtml } from './report.js';
import { type ReportFacts, STANDARD_IDS } from './standards.js';

const GUARDS = ['entries', 'meta', 'tiles', 'checkpoints', 'keys', 'prunings'].flatMap((t) => [
  `audit_${t}_write_once`,
  `audit_${t}_no_truncate`,
]);

function facts(overrides: Partial<ReportFacts> = {}): ReportFacts {
  const now = new Date('2030-01-10T00:00:00Z');
  return {
    origin: 'test/audit',
    generatedAt: now,
    checkpoint: { treeSize: 100, rootHash: 'cm9vdA==', keyId: 'abcd0123', issuedAt: now, note: 'note\n' },
    entries: 100,
    pruned: 0,
    firstEvent: new Date('2030-01-01T00:00:00Z'),
    lastEvent: now,
    countsByType: {
      'dev.flowloom.gateway.request.completed.v1': 80,
      'dev.flowloom.gateway.key.changed.v1': 5,
      'dev.flowloom.policy.version.pushed.v1': 2,
      'dev.flowloom.policy.promotion.approved.v1': 1,
      'dev.flowloom.audit.verification.completed.v1': 2,
      'dev.flowloom.audit.export.created.v1': 1,
      'dev.flowloom.gateway.auth.succeeded.v1': 9,
      'dev.flowloom.gateway.auth.failed.v1': 3,
    },
    withActor: 100,
    withKey: 80,
    checkpoints: 20,
    lastCheckpointAt: now,
    guards: GUARDS,
    verifierKeys: 1,
    retention: { 'dev.flowloom.gateway.*': 3000 },
    externalCopies: { folder: true, url: false },
    lastVerification: { at: new Date('2030-01-09T00:00:00Z'), ok: true, actor: 'auditor' },
    prunings: 0,
    ...overrides,
  };
}

describe('compliance reports', () => {
  it('when the trail holds all the evidence, then the audit-trail requirements of each standard are met or limited by scope only', () => {
    for (const id of STANDARD_IDS) {
      const report = buildReport(id, facts());
      expect(
        report.summary.gaps,
        `${id}: ${JSON.stringify(report.requirements.filter((r) => r.status === 'gap'))}`,
      ).toBe(0);
      expect(report.checkpoint?.treeSize).toBe(100);
    }
    const part11 = buildReport('part11', facts());
    expect(part11.requirements.find((r) => r.reference === '21 CFR §11.10(e)')?.status).toBe('met');
  });

  it('when admin logins and refused keys are in the trail, then access requirements count them; without any, a gap is named', () => {
    const access = (f: ReportFacts) =>
      buildReport('iso27001', f).requirements.filter((r) => 'logins' in r.counts);
    const counted = access(facts());
    expect(counted.length).toBeGreaterThan(0);
    for (const r of counted) {
      expect(r.counts).toMatchObject({ logins: 9, failedLogins: 3 });
      expect(r.evidence.join('\n')).toMatch(/9 admin logins .* 3 refused authentications/);
      expect(r.gaps.join('\n')).not.toMatch(/No logins/);
    }
    const {
      'dev.flowloom.gateway.auth.succeeded.v1': _s,
      'dev.flowloom.gateway.auth.failed.v1': _f,
      ...rest
    } = facts().countsByType;
    for (const r of access(facts({ countsByType: rest }))) {
      expect(r.counts).toMatchObject({ logins: 0, failedLogins: 0 });
      expect(r.gaps.join('\n')).toMatch(/No logins are recorded/);
    }
  });

  it('when there is no checkpoint, triggers are missing or retention is too short, then the gaps say so', () => {
    const report = buildReport(
      'sox',
      facts({ checkpoint: null, guards: GUARDS.slice(0, 4), retention: { 'dev.flowloom.gateway.*': 365 } }),
    );
    const gaps = report.requirements.flatMap((r) => r.gaps).join('\n');
    expect(gaps).toMatch(/No signed checkpoint/);
    expect(gaps).toMatch(/Only 4 write-once triggers/);
    expect(gaps).toMatch(/dev\.flowloom\.gateway\.\* is kept 365 days, shorter than the 7-year/);
    expect(report.summary.gaps).toBeGreaterThan(0);
  });

  it('when GDPR has no retention period, then storage limitation is a gap; Part 11 keeps records forever without one', () => {
    const gdpr = buildReport('gdpr', facts({ retention: {} }));
    expect(gdpr.requirements.find((r) => r.reference === 'Art. 5(1)(e)')?.status).toBe('gap');
    expect(
      buildReport('part11', facts({ retention: {} })).requirements.find(
        (r) => r.reference === '21 CFR §11.10(e)',
      )?.status,
    ).toBe('met');
  });

  it('when the last verification failed, then integrity requirements are gaps', () => {
    const report = buildReport(
      'hipaa',
      facts({ lastVerification: { at: new Date('2030-01-09'), ok: false, actor: 'a' } }),
    );
    expect(report.requirements.find((r) => r.reference === '45 CFR §164.312(c)(1)–(2)')?.status).toBe('gap');
  });

  it('when rendered to HTML, then text is escaped and the checkpoint is shown', () => {
    const html = renderReportHtml(buildReport('iso27001', facts({ origin: '<script>alert(1)</script>' })));
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&lt;script&gt;');
    expect(html).toContain('<pre>note\n</pre>');
  });
});
