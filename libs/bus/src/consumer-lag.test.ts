import { describe, expect, it } from 'vitest';
import { lagOf } from './consumer-lag.js';

const ends = [
  { partition: 0, high: '10', low: '0' },
  { partition: 1, high: '7', low: '5' },
  { partition: 2, high: '3', low: '0' },
];
const messages = (committed: Array<[number, string]>) =>
  lagOf('g', 't', ends, new Map(committed)).map((l) => l.messages);

describe('lagOf', () => {
  it('when a group committed some partitions, then the lag is the log end minus the committed offset', () => {
    expect(lagOf('g', 't', ends, new Map([[0, '4']]))[0]).toEqual({
      group: 'g',
      topic: 't',
      partition: 0,
      messages: 6,
    });
    // Partition 1 never committed: everything still in the log is ahead of the group.
    expect(
      messages([
        [0, '4'],
        [2, '3'],
      ]),
    ).toEqual([6, 2, 0]);
  });

  it('when a committed offset is behind the log start or unset (-1), then it counts from the log start', () => {
    expect(
      messages([
        [0, '-1'],
        [1, '2'],
      ]),
    ).toEqual([10, 2, 3]);
  });
});
