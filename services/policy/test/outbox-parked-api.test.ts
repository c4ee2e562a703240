import { createHash } from 'node:crypto';
import { createEvent, OUTBOX_EVENT_REDRIVEN, POLICY_VERSION_PUSHED } from '@flowloom/contracts';
import { canonicalize } from '@flowloom/ledger';
import { describe, expect, it } from 'vitest';
import { POLICY_SOURCE } from '../src/app/policies.js';
import { at, policyServiceOn } from './support.js';

// /api/v1/policy-outbox/parked on the policy service's own HTTP server, on PostgreSQL. The row is
// parked by hand here, as the relay parks one the bus refused for good (that path runs against real
// Kafka in event-relay-parking.test.ts); the in-process bus takes it when it is published again.

const started = policyServiceOn('postgres');

async function parkByHand(reason = 'MESSAGE_TOO_LARGE: too large') {
  const event = createEvent(POLICY_VERSION_PUSHED, POLICY_SOURCE, { source: 'x'.repeat(100) }, 'policy/big');
  await started.db.query(
    `insert into policy_outbox (id, event, parked_at, park_reason) values ($1, $2::jsonb, now(), $3)`,
    [event.id, JSON.stringify(event), reason],
  );
  return event;
}

describe('the policy service’s parked events API', () => {
  it('when an event is parked, then an admin lists it with its hash, and a redrive publishes it and records who asked', async () => {
    const { t } = started;
    const parked = await parkByHand();
    const other = await parkByHand();

    const listed = await t.call('GET', '/api/v1/policy-outbox/parked?limit=1', 'alice');
    expect(listed.status).toBe(200);
    expect(at(listed.body, 'total')).toBe(2);
    expect(at(listed.body, 'data')).toEqual([
      {
        id: parked.id,
        type: POLICY_VERSION_PUSHED,
        source: POLICY_SOURCE,
        subject: 'policy/big',
        time: parked.time,
        sizeBytes: canonicalize(parked).length,
        sha256: createHash('sha256').update(canonicalize(parked)).digest('hex'),
        reason: 'MESSAGE_TOO_LARGE: too large',
        parkedAt: expect.any(String),
      },
    ]);

    const redriven = await t.call('POST', '/api/v1/policy-outbox/parked/redrive', 'alice', {
      ids: [parked.id],
    });
    expect(redriven.status).toBe(200);
    expect(redriven.body).toEqual({ requeued: 1, published: [parked.id], parkedAgain: [], pending: [] });
    const events = await t.events();
    expect(events.filter((e) => e.id === parked.id)).toHaveLength(1);
    expect(events.some((e) => e.id === other.id)).toBe(false);
    const evidence = events.filter((e) => e.type === OUTBOX_EVENT_REDRIVEN);
    expect(evidence).toHaveLength(1);
    expect(evidence[0]?.source).toBe(POLICY_SOURCE);
    expect(evidence[0]?.data).toEqual({
      actor: 'key/alice-key (alice)',
      requested: [parked.id],
      requeued: 1,
      published: [parked.id],
      parkedAgain: [],
      pending: [],
    });

    // Without ids: every parked event.
    const all = await t.call('POST', '/api/v1/policy-outbox/parked/redrive', 'alice', {});
    expect(all.body).toEqual({ requeued: 1, published: [other.id], parkedAgain: [], pending: [] });
    expect(at((await t.call('GET', '/api/v1/policy-outbox/parked', 'alice')).body, 'total')).toBe(0);
  });

  it('when a member, no key or bad input asks, then it is refused and nothing is published again', async () => {
    const { t } = started;
    const parked = await parkByHand();
    expect((await t.call('GET', '/api/v1/policy-outbox/parked', 'member')).status).toBe(403);
    expect((await t.call('POST', '/api/v1/policy-outbox/parked/redrive', 'member', {})).status).toBe(403);
    expect((await t.call('POST', '/api/v1/policy-outbox/parked/redrive', '', {})).status).toBe(401);
    for (const body of [{ ids: ['nope'] }, { ids: [] }, { every: true }])
      expect((await t.call('POST', '/api/v1/policy-outbox/parked/redrive', 'alice', body)).status).toBe(400);
    expect((await t.call('GET', '/api/v1/policy-outbox/parked?limit=0', 'alice')).status).toBe(400);
    expect((await t.events()).some((e) => e.id === parked.id)).toBe(false);
    expect(at((await t.call('GET', '/api/v1/policy-outbox/parked', 'alice')).body, 'total')).toBe(1);
  });
});
