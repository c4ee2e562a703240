import { describe, expect, it } from 'vitest';
import { busCheck } from './health.js';

const since = Date.parse('2026-01-02T03:04:05Z');

describe('busCheck', () => {
  it('when connected and every group consumes, then it is ok', () => {
    expect(
      busCheck({ state: 'connected', since, target: 'k:9092', consumers: { audit: 'consuming' } }, 'x'),
    ).toBe('ok');
  });

  it('when the brokers are unreachable, then it says since when, why, what happens meanwhile and the fix', () => {
    const line = busCheck(
      {
        state: 'unavailable',
        since,
        reason: 'connect ECONNREFUSED',
        target: 'k:9092',
        consumers: { audit: 'waiting for Kafka' },
      },
      'events wait in the outbox',
    );
    expect(line).toBe(
      'degraded: Kafka at k:9092 unreachable since 2026-01-02T03:04:05.000Z (connect ECONNREFUSED); consumer group audit waiting for Kafka; events wait in the outbox. Fix: start Kafka, or correct FLOWLOOM_KAFKA_BROKERS; the service reconnects by itself',
    );
  });

  it('when connected but a group has not joined yet, then it is degraded naming the group', () => {
    const line = busCheck(
      { state: 'connected', since, target: 'k:9092', consumers: { audit: 'joining its group' } },
      'm',
    );
    expect(line).toMatch(/^degraded: consumer group audit joining its group; m\. Fix:/);
  });
});
