// Compliance reports: each standard's audit-trail requirements, mapped to the evidence the ledger
// holds. Evaluation is pure: it reads facts gathered from the ledger (app/report.ts) and states,
// per requirement, what is evidenced, with counts, and what is missing. It is an evidence map for
// an auditor, not a certification.

import {
  AUDIT_EXPORT_CREATED,
  AUDIT_REPORT_GENERATED,
  AUDIT_VERIFICATION_COMPLETED,
} from '@flowloom/contracts';

export const STANDARD_IDS = ['sox', 'hipaa', 'part11', 'iso27001', 'gdpr'] as const;
export type StandardId = (typeof STANDARD_IDS)[number];

export interface ReportFacts {
  readonly origin: string;
  readonly generatedAt: Date;
  readonly checkpoint: {
    readonly treeSize: number;
    readonly rootHash: string;
    readonly keyId: string;
    readonly issuedAt: Date;
    readonly note: string;
  } | null;
  readonly entries: number;
  readonly pruned: number;
  readonly firstEvent: Date | null;
  readonly lastEvent: Date | null;
  readonly countsByType: Readonly<Record<string, number>>;
  readonly withActor: number;
  readonly withKey: number;
  readonly checkpoints: number;
  readonly lastCheckpointAt: Date | null;
  /** Write-once triggers present on the ledger tables. */
  readonly guards: readonly string[];
  readonly verifierKeys: number;
  readonly retention: Readonly<Record<string, number>>;
  readonly externalCopies: { readonly folder: boolean; readonly url: boolean };
  readonly lastVerification: {
    readonly at: Date;
    readonly ok: boolean;
    readonly actor: string | null;
  } | null;
  readonly prunings: number;
}

export type RequirementStatus = 'met' | 'partial' | 'gap';

export interface RequirementResult {
  readonly id: string;
  readonly reference: string;
  readonly title: string;
  readonly requirement: string;
  readonly status: RequirementStatus;
  readonly evidence: readonly string[];
  readonly counts: Readonly<Record<string, number>>;
  readonly gaps: readonly string[];
}

interface Finding {
  evidence: string[];
  counts: Record<string, number>;
  gaps: string[];
  /** Findings that lower the status to partial rather than gap. */
  partial: string[];
}

interface Requirement {
  readonly id: string;
  readonly reference: string;
  readonly title: string;
  readonly requirement: string;
  readonly checks: ReadonlyArray<(facts: ReportFacts, finding: Finding) => void>;
}

export interface StandardDefinition {
  readonly id: StandardId;
  readonly name: string;
  readonly scope: string;
  readonly requirements: readonly Requirement[];
}

// Event type families, by suffix so versions and producers can evolve.
const count = (facts: ReportFacts, test: (type: string) => boolean): number =>
  Object.entries(facts.countsByType)
    .filter(([type]) => test(type))
    .reduce((sum, [, n]) => sum + n, 0);
const REQUESTS = (t: string): boolean => /\.request\.(completed|failed)\.v\d+$/.test(t);
const FAILED = (t: string): boolean => /\.request\.failed\.v\d+$/.test(t);
const KEY_CHANGES = (t: string): boolean => /\.key\.changed\.v\d+$/.test(t);
const POLICY_CHANGES = (t: string): boolean =>
  /\.policy\.(version\.pushed|promotion\.(requested|approved)|deployment\.changed)\.v\d+$/.test(t);
const DECISIONS = (t: string): boolean => /\.policy\.(decision|intervention)\.v\d+$/.test(t);
/** Admin logins (the gateway's auth.succeeded) and SSO/console logins of other producers. */
const LOGINS = (t: string): boolean =>
  /\.(auth\.succeeded|login|sso)\./.test(t) || /\.session\.(started|login)\./.test(t);
const FAILED_LOGINS = (t: string): boolean => /\.auth\.failed\.v\d+$/.test(t);
const VERIFICATIONS = (t: string): boolean => t === AUDIT_VERIFICATION_COMPLETED;
const EXPORTS = (t: string): boolean => t === AUDIT_EXPORT_CREATED;
const REPORTS = (t: string): boolean => t === AUDIT_REPORT_GENERATED;

const DAY = 86_400_000;
const fmt = (n: number): string => n.toLocaleString('en-US');
const day = (d: Date | null): string => (d ? d.toISOString().slice(0, 10) : 'never');

// --- Reusable checks -------------------------------------------------------------------------

function appendOnly(facts: ReportFacts, f: Finding): void {
  const tables = new Set(facts.guards.map((g) => g.replace(/_(write_once|no_truncate)$/, '')));
  f.counts['writeOnceTriggers'] = facts.guards.length;
  if (facts.guards.length >= 12) {
    f.evidence.push(
      `Write-once enforced by the database: ${facts.guards.length} triggers refuse UPDATE, DELETE and TRUNCATE on ${tables.size} ledger tables; retention can only blank content through one audited function, leaving each entry's hash.`,
    );
  } else {
    f.gaps.push(
      `Only ${facts.guards.length} write-once triggers are active on the ledger tables (12 expected): someone disabled or dropped them.`,
    );
  }
}

function signedIntegrity(facts: ReportFacts, f: Finding): void {
  f.counts['checkpoints'] = facts.checkpoints;
  if (!facts.checkpoint) {
    f.gaps.push('No signed checkpoint exists yet: nothing authenticates the entries.');
    return;
  }
  f.evidence.push(
    `Entries form an RFC 9162 Merkle tree; ${fmt(facts.checkpoints)} Ed25519-signed checkpoints (C2SP format) commit to it, the latest at ${fmt(facts.checkpoint.treeSize)} entries (key ${facts.checkpoint.keyId}, root ${facts.checkpoint.rootHash}).`,
  );
  if (facts.externalCopies.folder || facts.externalCopies.url) {
    f.evidence.push(
      `Checkpoints are also copied outside the database (${[facts.externalCopies.folder ? 'a folder' : '', facts.externalCopies.url ? 'a witness URL' : ''].filter(Boolean).join(' and ')}), so even a rewrite of the whole database is detectable.`,
    );
  } else {
    f.partial.push(
      'Checkpoints are kept only in the database: configure audit.checkpointDir or audit.checkpointUrl so that a rewrite of the whole database (by its administrator) is detectable too.',
    );
  }
}

function verified(maxAgeDays: number) {
  return (facts: ReportFacts, f: Finding): void => {
    const verifications = count(facts, VERIFICATIONS);
    f.counts['verifications'] = verifications;
    const last = facts.lastVerification;
    if (!last) {
      f.gaps.push('The trail was never verified end to end: run `flowloom audit verify` (it is recorded).');
      return;
    }
    f.evidence.push(
      `${fmt(verifications)} end-to-end verification(s) recorded; the last on ${day(last.at)} by ${last.actor ?? 'an unnamed actor'}: ${last.ok ? 'passed' : 'FAILED'}.`,
    );
    if (!last.ok) f.gaps.push('The last verification failed: investigate before relying on this trail.');
    else if (facts.generatedAt.getTime() - last.at.getTime() > maxAgeDays * DAY) {
      f.partial.push(`The last verification is older than ${maxAgeDays} days: verify regularly.`);
    }
  };
}

function timestamped(facts: ReportFacts, f: Finding): void {
  f.counts['entries'] = facts.entries;
  if (facts.entries === 0) {
    f.gaps.push('The trail holds no entries yet.');
    return;
  }
  f.evidence.push(
    `${fmt(facts.entries)} computer-generated entries, each with the event's UTC timestamp (ISO 8601, RFC 8785 canonical JSON), from ${day(facts.firstEvent)} to ${day(facts.lastEvent)}, appended by the audit service as events arrive, never typed in by a person.`,
  );
}

function attributed(facts: ReportFacts, f: Finding): void {
  f.counts['withActor'] = facts.withActor;
  f.counts['withKey'] = facts.withKey;
  const requests = count(facts, REQUESTS);
  if (facts.entries === 0) return;
  const share = facts.withActor / Math.max(1, facts.entries - facts.pruned);
  f.evidence.push(
    `${fmt(facts.withActor)} entries name who acted (a key owner or an admin); ${fmt(facts.withKey)} name the API key used.`,
  );
  if (share < 0.99) {
    const missing = facts.entries - facts.pruned - facts.withActor;
    f.partial.push(
      `${fmt(missing)} entries with content do not name an actor (e.g. requests with keys that have no owner, or system events).`,
    );
  }
  if (requests > 0 && facts.withKey === 0)
    f.gaps.push('Requests are recorded without the key that made them.');
}

function whatHappened(facts: ReportFacts, f: Finding): void {
  const requests = count(facts, REQUESTS);
  const decisions = count(facts, DECISIONS);
  const keyChanges = count(facts, KEY_CHANGES);
  const policyChanges = count(facts, POLICY_CHANGES);
  Object.assign(f.counts, { requests, decisions, keyChanges, policyChanges });
  f.evidence.push(
    `Recorded: ${fmt(requests)} AI requests (model, provider, tokens, cost, outcome), ${fmt(decisions)} policy decisions and interventions with their reasons, ${fmt(keyChanges)} key changes, ${fmt(policyChanges)} policy changes, across ${Object.keys(facts.countsByType).length} event types.`,
  );
}

function accessChanges(facts: ReportFacts, f: Finding): void {
  const keyChanges = count(facts, KEY_CHANGES);
  const logins = count(facts, LOGINS);
  const failedLogins = count(facts, FAILED_LOGINS);
  Object.assign(f.counts, { keyChanges, logins, failedLogins });
  if (keyChanges > 0) {
    f.evidence.push(
      `${fmt(keyChanges)} API key creations, revocations and rotations recorded with the admin who made them.`,
    );
  } else f.partial.push('No key change is recorded in this trail.');
  if (logins > 0 || failedLogins > 0) {
    f.evidence.push(
      `${fmt(logins)} admin logins (at most one per admin key per window) and ${fmt(failedLogins)} refused authentications (unknown, revoked, expired or non-admin keys, with key hint, reason, source IP and request id) recorded.`,
    );
  } else {
    f.partial.push(
      'No logins are recorded: no admin key has authenticated to the admin API and no key was refused in this period.',
    );
  }
}

function changeManagement(facts: ReportFacts, f: Finding): void {
  const policyChanges = count(facts, POLICY_CHANGES);
  const approvals = count(facts, (t) => /\.policy\.promotion\.approved\.v\d+$/.test(t));
  Object.assign(f.counts, { policyChanges, approvals });
  if (policyChanges === 0) {
    f.partial.push(
      'No policy change is recorded: none was made in this period, or the policy service is not connected.',
    );
    return;
  }
  f.evidence.push(
    `${fmt(policyChanges)} policy changes recorded (versions pushed, promotions requested and approved, deployments), ${fmt(approvals)} of them approvals by a second person.`,
  );
}

function reviewed(facts: ReportFacts, f: Finding): void {
  const exports = count(facts, EXPORTS);
  const reports = count(facts, REPORTS);
  const verifications = count(facts, VERIFICATIONS);
  Object.assign(f.counts, { exports, reports, verifications });
  if (exports + reports + verifications === 0) {
    f.gaps.push('No review of the trail is recorded (no verification, export or report before this one).');
    return;
  }
  f.evidence.push(
    `Reviews recorded in the trail itself: ${fmt(verifications)} verifications, ${fmt(exports)} evidence exports, ${fmt(reports)} reports.`,
  );
}

function copies(facts: ReportFacts, f: Finding): void {
  const exports = count(facts, EXPORTS);
  f.counts['exports'] = exports;
  f.evidence.push(
    '`flowloom audit export` writes a complete, independently verifiable copy (entries.jsonl, checkpoint, proofs.json, public-key; format in BUNDLE-FORMAT.md); `flowloom audit verify DIR` checks it offline; this report is also written as HTML for reading.',
  );
  if (exports === 0) f.partial.push('No evidence export has been made yet.');
}

/**
 * Retention evidence. `minimumDays`: every rule must keep at least that long (keeping forever is
 * fine). `defined`: a standard that requires a limit (GDPR storage limitation) counts "forever" as a
 * gap; `preferred`: as a point to settle (partial).
 */
function retention(options: { minimumDays?: number; limit?: 'defined' | 'preferred'; label: string }) {
  return (facts: ReportFacts, f: Finding): void => {
    const rules = Object.entries(facts.retention);
    f.counts['retentionRules'] = rules.length;
    f.counts['prunedEntries'] = facts.pruned;
    if (rules.length === 0) {
      f.evidence.push(
        'No retention rule: every entry is kept indefinitely (with its hash, so it stays verifiable).',
      );
      if (options.limit === 'defined') {
        f.gaps.push(`No retention period is defined (${options.label}): set audit.retention per event type.`);
      } else if (options.limit === 'preferred') {
        f.partial.push(
          `No retention period is defined (${options.label}): decide one and set audit.retention.`,
        );
      }
      return;
    }
    f.evidence.push(
      `Retention per event type: ${rules.map(([type, days]) => `${type} ${days} days`).join('; ')}. Expired entries lose their content only; their hashes stay, so verification still covers them (${fmt(facts.pruned)} pruned so far in ${fmt(facts.prunings)} audited runs).`,
    );
    if (options.minimumDays !== undefined) {
      for (const [type, days] of rules.filter(([, d]) => d < (options.minimumDays ?? 0))) {
        f.gaps.push(
          `${type} is kept ${days} days, shorter than ${options.label} (${options.minimumDays} days).`,
        );
      }
    }
  };
}

function secretsRemoved(_facts: ReportFacts, f: Finding): void {
  f.evidence.push(
    'Secrets (authorization headers, API keys, tokens, passwords, provider keys) are removed from every event before it is logged; API keys are stored as hashes only.',
  );
}

function clockSync(facts: ReportFacts, f: Finding): void {
  f.evidence.push('Timestamps are taken from the host clock in UTC at the moment of the event.');
  f.partial.push(
    "Clock synchronisation (NTP) is the host's responsibility and is not evidenced by FlowLoom.",
  );
  f.counts['entries'] = facts.entries;
}

function failuresRecorded(facts: ReportFacts, f: Finding): void {
  const failures = count(facts, FAILED);
  const interventions = count(facts, (t) => /\.policy\.intervention\.v\d+$/.test(t));
  Object.assign(f.counts, { failures, interventions });
  f.evidence.push(
    `Exceptions and faults are events too: ${fmt(failures)} failed requests (with error code and provider) and ${fmt(interventions)} interventions are recorded.`,
  );
}

function accessControl(facts: ReportFacts, f: Finding): void {
  f.evidence.push(
    'Every request is authenticated with a virtual API key (stored as a hash); the admin API, including this trail, requires an admin key; key changes are themselves recorded.',
  );
  accessChanges(facts, f);
}

function systemSignatures(facts: ReportFacts, f: Finding): void {
  f.counts['verifierKeys'] = facts.verifierKeys;
  if (facts.checkpoint) {
    f.evidence.push(
      `Checkpoints are signed with the log's Ed25519 key (${facts.verifierKeys} key(s) published, retired keys included, so rotation keeps old signatures verifiable); each signature is bound to the exact tree it covers.`,
    );
  }
  f.partial.push(
    'These are system signatures on the log, not electronic signatures of individuals (Part 11 subpart C): person-level signing of records is outside FlowLoom.',
  );
}

// --- Standards -------------------------------------------------------------------------------

const req = (
  id: string,
  reference: string,
  title: string,
  requirement: string,
  checks: Requirement['checks'],
): Requirement => ({ id, reference, title, requirement, checks });

export const STANDARDS: Readonly<Record<StandardId, StandardDefinition>> = {
  sox: {
    id: 'sox',
    name: 'Sarbanes-Oxley Act (SOX) — IT general controls',
    scope:
      'Audit-trail aspects of §404 IT general controls (access, change management, monitoring) and §802 record retention, as applied to AI usage through FlowLoom.',
    requirements: [
      req(
        'sox-802',
        '§802 (18 U.S.C. §1519–1520), SEC Rule 2-06',
        'Record retention and non-alteration',
        'Audit-relevant records are retained for seven years and may not be altered, destroyed or falsified.',
        [
          appendOnly,
          retention({ minimumDays: 2555, label: 'the 7-year SOX/SEC retention' }),
          signedIntegrity,
        ],
      ),
      req(
        'sox-404-access',
        '§404 ITGC — logical access',
        'Changes to access are logged',
        'Grants, changes and revocations of access are recorded with who made them and when.',
        [accessChanges, attributed],
      ),
      req(
        'sox-404-change',
        '§404 ITGC — change management',
        'Changes to controls are logged and approved',
        'Changes to the rules that govern processing are recorded, approved and traceable.',
        [changeManagement],
      ),
      req(
        'sox-404-trail',
        '§404 ITGC — operations',
        'Complete, tamper-evident activity trail',
        'Processing activity is recorded completely and the record can be shown to be unaltered.',
        [timestamped, whatHappened, signedIntegrity, verified(90)],
      ),
      req(
        'sox-404-monitoring',
        '§404 ITGC — monitoring',
        'The trail is reviewed',
        'Logs are reviewed and the reviews are evidenced.',
        [reviewed],
      ),
    ],
  },
  hipaa: {
    id: 'hipaa',
    name: 'HIPAA Security Rule (45 CFR Part 164, Subpart C)',
    scope:
      'Technical safeguards for audit controls, integrity and authentication, and documentation retention, for AI processing that may involve ePHI.',
    requirements: [
      req(
        'hipaa-312b',
        '45 CFR §164.312(b)',
        'Audit controls',
        'Mechanisms that record and examine activity in systems that contain or use ePHI.',
        [timestamped, whatHappened, attributed],
      ),
      req(
        'hipaa-312c1',
        '45 CFR §164.312(c)(1)–(2)',
        'Integrity',
        'Protect ePHI from improper alteration or destruction, with a mechanism to corroborate it was not altered.',
        [appendOnly, signedIntegrity, verified(90), secretsRemoved],
      ),
      req(
        'hipaa-312d',
        '45 CFR §164.312(d)',
        'Person or entity authentication',
        'Verify that a person or entity seeking access is the one claimed.',
        [accessControl],
      ),
      req(
        'hipaa-308a1iiD',
        '45 CFR §164.308(a)(1)(ii)(D)',
        'Information system activity review',
        'Regularly review records of information system activity, such as audit logs and access reports.',
        [reviewed, verified(30)],
      ),
      req(
        'hipaa-316b2',
        '45 CFR §164.316(b)(2)(i)',
        'Retention of documentation',
        'Retain required documentation for six years from creation or last effective date.',
        [retention({ minimumDays: 2190, label: 'the 6-year HIPAA retention' })],
      ),
    ],
  },
  part11: {
    id: 'part11',
    name: '21 CFR Part 11 — Electronic records',
    scope:
      'Controls for closed systems (§11.10) that concern the audit trail of AI activity through FlowLoom.',
    requirements: [
      req(
        'part11-10e',
        '21 CFR §11.10(e)',
        'Secure, computer-generated, time-stamped audit trails',
        'Computer-generated, time-stamped audit trails independently record the date and time of operator entries and actions that create, modify or delete records; changes do not obscure previously recorded information; the trail is retained at least as long as the records and is available for review and copying.',
        [
          timestamped,
          attributed,
          appendOnly,
          retention({ label: 'at least as long as the subject records' }),
          copies,
        ],
      ),
      req(
        'part11-10a',
        '21 CFR §11.10(a)',
        'Validation; discerning invalid or altered records',
        'Systems are validated for accuracy and reliability and can discern invalid or altered records.',
        [signedIntegrity, verified(90)],
      ),
      req(
        'part11-10b',
        '21 CFR §11.10(b)',
        'Accurate and complete copies',
        'Generate accurate and complete copies of records in human-readable and electronic form for inspection.',
        [copies],
      ),
      req(
        'part11-10c',
        '21 CFR §11.10(c)',
        'Protection of records',
        'Protect records to enable their accurate and ready retrieval throughout the retention period.',
        [appendOnly, signedIntegrity, retention({ label: 'the records retention period' })],
      ),
      req(
        'part11-10d',
        '21 CFR §11.10(d)',
        'Limiting system access',
        'Limit system access to authorized individuals.',
        [accessControl],
      ),
      req(
        'part11-70',
        '21 CFR §11.70',
        'Signature/record linking',
        'Signatures are linked to their records so they cannot be excised, copied or transferred to falsify a record.',
        [systemSignatures],
      ),
    ],
  },
  iso27001: {
    id: 'iso27001',
    name: 'ISO/IEC 27001:2022 — Annex A controls',
    scope: 'Annex A controls on logging, monitoring, evidence and records, for AI usage through FlowLoom.',
    requirements: [
      req(
        'iso-a815',
        'A.8.15',
        'Logging',
        'Logs that record activities, exceptions, faults and other relevant events are produced, stored, protected and analysed.',
        [timestamped, whatHappened, failuresRecorded, appendOnly, signedIntegrity],
      ),
      req(
        'iso-a816',
        'A.8.16',
        'Monitoring activities',
        'Networks, systems and applications are monitored for anomalous behaviour and actions taken.',
        [failuresRecorded, reviewed],
      ),
      req(
        'iso-a817',
        'A.8.17',
        'Clock synchronization',
        'Clocks of information processing systems are synchronised to approved time sources.',
        [clockSync],
      ),
      req(
        'iso-a528',
        'A.5.28',
        'Collection of evidence',
        'Procedures for the identification, collection, acquisition and preservation of evidence.',
        [copies, verified(90)],
      ),
      req(
        'iso-a533',
        'A.5.33',
        'Protection of records',
        'Records are protected from loss, destruction, falsification and unauthorized access or release.',
        [
          appendOnly,
          signedIntegrity,
          retention({ limit: 'preferred', label: 'a defined records retention' }),
          secretsRemoved,
        ],
      ),
      req(
        'iso-a518',
        'A.5.18',
        'Access rights',
        'Access rights are provisioned, reviewed, modified and removed, and changes are traceable.',
        [accessChanges],
      ),
    ],
  },
  gdpr: {
    id: 'gdpr',
    name: 'GDPR (Regulation (EU) 2016/679)',
    scope:
      'Principles and obligations that bear on an audit trail of AI processing which contains personal data (who made requests, projects, jobs).',
    requirements: [
      req(
        'gdpr-5-1-e',
        'Art. 5(1)(e)',
        'Storage limitation',
        'Personal data is kept no longer than necessary for its purposes.',
        [retention({ limit: 'defined', label: 'storage limitation' })],
      ),
      req(
        'gdpr-5-1-f',
        'Art. 5(1)(f), Art. 32(1)(b)',
        'Integrity and confidentiality',
        'Appropriate security, including protection against unauthorised processing and accidental loss or alteration.',
        [appendOnly, signedIntegrity, secretsRemoved, accessControl],
      ),
      req('gdpr-5-2', 'Art. 5(2), Art. 24', 'Accountability', 'The controller can demonstrate compliance.', [
        whatHappened,
        reviewed,
        copies,
      ]),
      req(
        'gdpr-30',
        'Art. 30',
        'Records of processing activities',
        'A record of processing activities under the controller’s responsibility.',
        [
          whatHappened,
          (_facts, f) =>
            f.partial.push(
              'The trail records each processing operation (model, provider, project); the Art. 30 register itself (purposes, categories, recipients) is an organisational document kept outside FlowLoom.',
            ),
        ],
      ),
      req(
        'gdpr-32-1-d',
        'Art. 32(1)(d)',
        'Regular testing of security measures',
        'A process for regularly testing, assessing and evaluating the effectiveness of security measures.',
        [verified(90)],
      ),
      req('gdpr-17', 'Art. 17', 'Right to erasure', 'Personal data can be erased when required.', [
        (facts, f) => {
          f.counts['prunedEntries'] = facts.pruned;
          f.evidence.push(
            'Retention removes expired entries’ content (actor, project, job, text) while keeping their hashes, so erasure does not break the trail’s verifiability.',
          );
          f.partial.push(
            'Pruning is by event type and age; erasing one data subject’s entries on request is not automated.',
          );
        },
      ]),
    ],
  },
};

export function evaluateStandard(standard: StandardDefinition, facts: ReportFacts): RequirementResult[] {
  return standard.requirements.map((requirement) => {
    const finding: Finding = { evidence: [], counts: {}, gaps: [], partial: [] };
    for (const check of requirement.checks) check(facts, finding);
    const status: RequirementStatus =
      finding.gaps.length > 0 ? 'gap' : finding.partial.length > 0 ? 'partial' : 'met';
    return {
      id: requirement.id,
      reference: requirement.reference,
      title: requirement.title,
      requirement: requirement.requirement,
      status,
      evidence: [...new Set(finding.evidence)],
      counts: finding.counts,
      gaps: [...new Set([...finding.gaps, ...finding.partial])],
    };
  });
}
