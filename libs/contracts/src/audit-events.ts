import { z } from 'zod';

// Events the audit service emits about the trail itself (source flowloom/audit). They land in the
// ledger like every other event, so the trail also records who exported, verified or reported on
// it, key rotations and retention runs. Payloads evolve by adding optional fields only.

export const AUDIT_SOURCE = 'flowloom/audit';

/** An evidence bundle was exported (by the CLI through the admin API, or from the data folder). */
export const AUDIT_EXPORT_CREATED = 'dev.flowloom.audit.export.created.v1';
/** Someone verified the live log end to end, and what they found. */
export const AUDIT_VERIFICATION_COMPLETED = 'dev.flowloom.audit.verification.completed.v1';
/** A compliance report was generated. */
export const AUDIT_REPORT_GENERATED = 'dev.flowloom.audit.report.generated.v1';
/** The checkpoint signing key changed (rotated, or replaced at start); the old verifier key stays published. */
export const AUDIT_KEY_ROTATED = 'dev.flowloom.audit.key.rotated.v1';
/** Retention removed the content of expired entries (their leaf hashes stay). */
export const AUDIT_RETENTION_APPLIED = 'dev.flowloom.audit.retention.applied.v1';

export const AUDIT_EVENT_TYPES = [
  AUDIT_EXPORT_CREATED,
  AUDIT_VERIFICATION_COMPLETED,
  AUDIT_REPORT_GENERATED,
  AUDIT_KEY_ROTATED,
  AUDIT_RETENTION_APPLIED,
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

const count = z.number().int().nonnegative();
/** Who did it: an admin key's owner or a command's description (e.g. `flowloom audit export`). */
const actor = z.string().min(1);

export const auditExportCreatedSchema = z.object({
  actor,
  /** The signed tree size the bundle was cut at. */
  treeSize: count,
  /** The export's filter (from, to, project, type, ...); empty for a full export. */
  filter: z.record(z.string().max(50), z.string().max(500)),
  /** Entries exported with their content. */
  exported: count,
  /** Entries outside the filter, exported as leaf-hash markers only. */
  withheld: count,
  /** Entries whose content retention had already removed. */
  pruned: count,
  destination: z.string().max(1000).optional(),
});
export type AuditExportCreated = z.infer<typeof auditExportCreatedSchema>;

export const auditVerificationCompletedSchema = z.object({
  actor,
  outcome: z.enum(['passed', 'failed']),
  ok: z.boolean(),
  treeSize: count,
  entries: count,
  checkpoints: count,
  summary: z.string().max(2000),
  /** The first entry found damaged, when verification failed on an entry. */
  firstBadIndex: count.optional(),
});
export type AuditVerificationCompleted = z.infer<typeof auditVerificationCompletedSchema>;

export const auditReportGeneratedSchema = z.object({
  actor,
  /** sox, hipaa, part11, iso27001 or gdpr. */
  standard: z.string(),
  treeSize: count,
  /** Requirements the trail holds no or too little evidence for. */
  gaps: count,
});
export type AuditReportGenerated = z.infer<typeof auditReportGeneratedSchema>;

export const auditKeyRotatedSchema = z.object({
  actor,
  previousKeyId: z.string(),
  keyId: z.string(),
  /** The new key's verifier key (C2SP vkey text): public. */
  verifierKey: z.string(),
  /**
   * How the key changed: `api` rotated through the admin API; `replaced-at-start` the service started
   * with another key file than the one that signed the latest checkpoint (a replaced file or Secret);
   * `regenerated-at-start` the key file was missing at start and a new key was generated. Absent in
   * events recorded before this field existed (they were all `api`).
   */
  how: z.enum(['api', 'replaced-at-start', 'regenerated-at-start']).optional(),
});
export type AuditKeyRotated = z.infer<typeof auditKeyRotatedSchema>;

export const auditRetentionAppliedSchema = z.object({
  actor,
  /** Entries below this size were eligible (the latest signed checkpoint). */
  through: count,
  pruned: z.array(
    z.object({
      type: z.string(),
      pruned: count,
      /** ISO 8601: entries of this type older than this lost their content. */
      cutoff: z.string(),
    }),
  ),
});
export type AuditRetentionApplied = z.infer<typeof auditRetentionAppliedSchema>;

export const auditEventPayloadSchemas = {
  [AUDIT_EXPORT_CREATED]: auditExportCreatedSchema,
  [AUDIT_VERIFICATION_COMPLETED]: auditVerificationCompletedSchema,
  [AUDIT_REPORT_GENERATED]: auditReportGeneratedSchema,
  [AUDIT_KEY_ROTATED]: auditKeyRotatedSchema,
  [AUDIT_RETENTION_APPLIED]: auditRetentionAppliedSchema,
} as const satisfies Record<AuditEventType, z.ZodType>;
