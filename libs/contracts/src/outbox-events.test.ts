import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEvent } from './cloudevent.js';
import {
  eventDigest,
  OUTBOX_EVENT_PARKED,
  outboxEventParkedSchema,
  parkedEventStandIn,
} from './outbox-events.js';

const parked = createEvent(
  'dev.flowloom.gateway.request.completed.v1',
  'flowloom/gateway',
  { z: 1, a: 'é', inputs: { prompt: 'long' } },
  'job/j1',
  Date.UTC(2026, 0, 2),
);

describe('parkedEventStandIn', () => {
  it('when an event is parked, then its stand-in names it and hashes its canonical JSON (keys sorted, no spaces)', () => {
    const standIn = parkedEventStandIn(parked, 'MESSAGE_TOO_LARGE: too large', 'flowloom/gateway');
    const canonical = `{"data":{"a":"é","inputs":{"prompt":"long"},"z":1},"datacontenttype":"application/json","id":"${parked.id}","source":"flowloom/gateway","specversion":"1.0","subject":"job/j1","time":"2026-01-02T00:00:00.000Z","type":"dev.flowloom.gateway.request.completed.v1"}`;
    expect(standIn.type).toBe(OUTBOX_EVENT_PARKED);
    expect(standIn.subject).toBe('job/j1');
    expect(standIn.id).not.toBe(parked.id);
    expect(standIn.data).toEqual({
      eventId: parked.id,
      eventType: parked.type,
      eventSource: 'flowloom/gateway',
      eventSubject: 'job/j1',
      eventTime: '2026-01-02T00:00:00.000Z',
      sizeBytes: Buffer.byteLength(canonical),
      sha256: createHash('sha256').update(canonical).digest('hex'),
      reason: 'MESSAGE_TOO_LARGE: too large',
      outcome: 'parked',
    });
    expect(outboxEventParkedSchema.safeParse(standIn.data).success).toBe(true);
  });

  it('when the reason is very long, then the stand-in keeps its first 1000 characters and stays valid', () => {
    const standIn = parkedEventStandIn(parked, 'r'.repeat(5000), 'flowloom/policy');
    expect(standIn.data.reason).toHaveLength(1000);
    expect(standIn.source).toBe('flowloom/policy');
    expect(outboxEventParkedSchema.safeParse(standIn.data).success).toBe(true);
  });

  it('when two events differ in one byte, then their digests differ; the same event digests the same', () => {
    const other = { ...parked, data: { ...parked.data, z: 2 } };
    expect(eventDigest(other).sha256).not.toBe(eventDigest(parked).sha256);
    expect(eventDigest({ ...parked })).toEqual(eventDigest(parked));
  });
});
