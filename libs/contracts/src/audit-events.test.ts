import { describe, expect, it } from 'vitest';
import {
  AUDIT_EVENT_TYPES,
  AUDIT_KEY_ROTATED,
  AUDIT_VERIFICATION_COMPLETED,
  auditEventPayloadSchemas,
  auditExportCreatedSchema,
  auditRetentionAppliedSchema,
} from './audit-events.js';
import { eventPayloadSchemas } from './gateway-events.js';

describe('audit event payloads', () => {
  it('when a consumer looks up any audit event type, then the shared registry has its schema', () => {
    for (const type of AUDIT_EVENT_TYPES) {
      expect(eventPayloadSchemas[type]).toBe(auditEventPayloadSchemas[type]);
      expect(type).toMatch(/^dev\.flowloom\.audit\.[a-z.]+\.v\d+$/);
    }
  });

  it('when a filtered export is recorded, then its payload validates; a negative count does not', () => {
    const payload = {
      actor: 'cli alice (direct)',
      treeSize: 120,
      filter: { project: 'alpha', from: '2025-01-01' },
      exported: 12,
      withheld: 108,
      pruned: 0,
      destination: '/tmp/evidence',
    };
    expect(auditExportCreatedSchema.parse(payload)).toEqual(payload);
    expect(auditExportCreatedSchema.safeParse({ ...payload, withheld: -1 }).success).toBe(false);
    expect(auditExportCreatedSchema.safeParse({ ...payload, actor: '' }).success).toBe(false);
  });

  it('when a newer producer adds a field, then an older consumer still accepts the payload', () => {
    const rotated = { actor: 'admin', previousKeyId: 'a1', keyId: 'b2', verifierKey: 'log+b2+AQ', hsm: true };
    expect(auditEventPayloadSchemas[AUDIT_KEY_ROTATED].safeParse(rotated).success).toBe(true);
  });

  it('when a verification or retention payload is malformed, then it is refused', () => {
    const verification = auditEventPayloadSchemas[AUDIT_VERIFICATION_COMPLETED];
    const ok = {
      actor: 'cli bob',
      outcome: 'failed',
      ok: false,
      treeSize: 9,
      entries: 9,
      checkpoints: 2,
      summary: 'FAILED: entry 4 was changed',
      firstBadIndex: 4,
    };
    expect(verification.safeParse(ok).success).toBe(true);
    expect(verification.safeParse({ ...ok, outcome: 'maybe' }).success).toBe(false);
    expect(verification.safeParse({ ...ok, summary: 'x'.repeat(2001) }).success).toBe(false);
    expect(
      auditRetentionAppliedSchema.safeParse({
        actor: 'flowloom/audit retention',
        through: 100,
        pruned: [
          {
            type: 'dev.flowloom.gateway.request.completed.v1',
            pruned: 3,
            cutoff: '2025-01-01T00:00:00.000Z',
          },
        ],
      }).success,
    ).toBe(true);
    expect(
      auditRetentionAppliedSchema.safeParse({ actor: 'x', through: 1, pruned: [{ type: 't' }] }).success,
    ).toBe(false);
  });
});
