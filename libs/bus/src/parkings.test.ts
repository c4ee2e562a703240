import { createEvent, OUTBOX_EVENT_PARKED, parkedEventStandIn } from '@flowloom/contracts';
import { describe, expect, it } from 'vitest';
import { parkingsOf } from './parkings.js';

const event = (n: number) => createEvent('dev.flowloom.test.parking.v1', 'flowloom/test', { n }, `job/${n}`);

describe('parkingsOf', () => {
  it('when some events were refused, then each refused one is parked, in order, with a stand-in naming it', () => {
    const events = [event(1), event(2), event(3)];
    const parked = parkingsOf(
      events,
      [
        { id: events[2]!.id, type: events[2]!.type, reason: 'INVALID_RECORD: x' },
        { id: events[0]!.id, type: events[0]!.type, reason: 'MESSAGE_TOO_LARGE: y' },
      ],
      'flowloom/gateway',
    );
    expect(parked.map((p) => [p.event.id, p.reason])).toEqual([
      [events[0]!.id, 'MESSAGE_TOO_LARGE: y'],
      [events[2]!.id, 'INVALID_RECORD: x'],
    ]);
    expect(parked.map((p) => p.standIn?.type)).toEqual([OUTBOX_EVENT_PARKED, OUTBOX_EVENT_PARKED]);
    expect(parked[0]?.standIn?.source).toBe('flowloom/gateway');
  });

  it('when a stand-in itself is refused, then it is parked without a stand-in of its own (no endless chain)', () => {
    const standIn = parkedEventStandIn(event(1), 'MESSAGE_TOO_LARGE', 'flowloom/gateway');
    const parked = parkingsOf(
      [standIn],
      [{ id: standIn.id, type: standIn.type, reason: 'INVALID_RECORD' }],
      's',
    );
    expect(parked).toEqual([{ event: standIn, reason: 'INVALID_RECORD' }]);
  });

  it('when nothing was refused, then nothing is parked', () => {
    expect(parkingsOf([event(1)], [], 's')).toEqual([]);
  });
});
