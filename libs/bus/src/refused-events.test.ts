import { type CloudEvent, createEvent } from '@flowloom/contracts';
import { describe, expect, it } from 'vitest';
import { EventsRefusedError, sendIsolatingRefused } from './refused-events.js';

const event = (n: number, bytes = 10): CloudEvent =>
  createEvent('dev.flowloom.test.refusal.v1', 'flowloom/test', { n, pad: 'x'.repeat(bytes) }, 'job/1');

const tooLarge = Object.assign(new Error('too large'), { name: 'KafkaJSProtocolError' });
const refusalOf = (error: unknown) => (error === tooLarge ? 'MESSAGE_TOO_LARGE' : undefined);

/** A broker that refuses a send holding one event above `maxEvent` bytes or above `maxBatch` in total. */
function broker(maxEvent: number, maxBatch = Number.POSITIVE_INFINITY) {
  const accepted: number[] = [];
  let sends = 0;
  const size = (e: CloudEvent) => JSON.stringify(e.data).length;
  const send = async (events: readonly CloudEvent[]) => {
    sends++;
    const total = events.reduce((sum, e) => sum + size(e), 0);
    if (events.some((e) => size(e) > maxEvent) || total > maxBatch) throw tooLarge;
    accepted.push(...events.map((e) => (e.data as { n: number }).n));
  };
  return { send, accepted, sends: () => sends };
}

describe('sendIsolatingRefused', () => {
  it('when every event is accepted, then one send carries them all and nothing is refused', async () => {
    const b = broker(1_000);
    const events = [1, 2, 3].map((n) => event(n));
    expect(await sendIsolatingRefused(events, b.send, refusalOf)).toEqual([]);
    expect(b.accepted).toEqual([1, 2, 3]);
    expect(b.sends()).toBe(1);
  });

  it('when one event is too large, then only it is refused and the others go out in order', async () => {
    const b = broker(100);
    const events = [event(1), event(2), event(3, 500), event(4), event(5)];
    let renewed = 0;
    const refused = await sendIsolatingRefused(events, b.send, refusalOf, async () => {
      renewed++;
    });
    expect(refused).toEqual([{ id: events[2]!.id, type: events[2]!.type, reason: 'MESSAGE_TOO_LARGE' }]);
    expect(b.accepted).toEqual([1, 2, 4, 5]);
    expect(renewed).toBeGreaterThan(0);
  });

  it('when only the batch as a whole is too large, then its halves go through and nothing is refused', async () => {
    const b = broker(100, 150);
    const events = [1, 2, 3, 4, 5, 6].map((n) => event(n, 30));
    expect(await sendIsolatingRefused(events, b.send, refusalOf)).toEqual([]);
    expect(b.accepted).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('when several events are too large, then each is named, in order', async () => {
    const b = broker(100);
    const events = [event(1, 500), event(2), event(3, 500), event(4, 500)];
    const refused = await sendIsolatingRefused(events, b.send, refusalOf);
    expect(refused.map((r) => r.id)).toEqual([events[0]!.id, events[2]!.id, events[3]!.id]);
    expect(b.accepted).toEqual([2]);
    expect(new EventsRefusedError(refused).message).toContain(events[2]!.id);
  });

  it('when a send fails for another reason (brokers away), then that failure is thrown as is', async () => {
    const down = new Error('Connection refused');
    await expect(sendIsolatingRefused([event(1)], () => Promise.reject(down), refusalOf)).rejects.toBe(down);
  });
});
