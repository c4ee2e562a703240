// Events the audit service itself emits. They land in the ledger like every other event, so the
// trail also records who exported, verified or reported on it, key rotations and retention runs.
// Payloads evolve by adding optional fields only.

export const AUDIT_SOURCE = 'flowloom/audit';

/** An evidence bundle was exported (by the CLI through the admin API, or from the data folder). */
export const AUDIT_EXPORT_CREATED = 'dev.flowloom.audit.export.created.v1';
/** Someone verified the live log end to end, and what they found. */
export const AUDIT_VERIFICATION_COMPLETED = 'dev.flowloom.audit.verification.completed.v1';
/** A compliance report was generated. */
export const AUDIT_REPORT_GENERATED = 'dev.flowloom.audit.report.generated.v1';
/** The checkpoint signing key was rotated; the old verifier key stays published. */
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
