import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { closeReportingDrain } from '../src/commands/up.js';

// A shutdown of `flowloom up` first hands the outbox to the audit trail: after a burst that takes
// seconds, and the user is told why it waits and how to stop at once.

function recorder() {
  const lines: string[] = [];
  return { lines, io: { out: (text: string) => lines.push(text) } };
}

describe('flowloom up: a slow shutdown reports what it still hands to the audit trail', () => {
  it('when closing outlasts the report interval with events left, then it says how many, counting down, and stops saying so once closed', async () => {
    const { lines, io } = recorder();
    let left = 30_000;
    const close = async () => {
      for (let i = 0; i < 6; i++) {
        await sleep(25);
        left -= 5_000;
      }
    };
    await closeReportingDrain(close, async () => left, io, 40);
    const counts = lines.map((line) =>
      Number(/(\d[\d,]*) events still going/.exec(line)?.[1]?.replaceAll(',', '')),
    );
    expect(counts.length).toBeGreaterThanOrEqual(2);
    expect(counts.every((n) => n > 0 && n < 30_000)).toBe(true);
    expect([...counts].sort((a, b) => b - a)).toEqual(counts);
    expect(lines[0]).toMatch(/Ctrl-C again/);
    const after = lines.length;
    await sleep(120);
    expect(lines.length).toBe(after);
  });

  it.each([
    { when: 'closing is quicker than the report interval', closeMs: 10, left: 500, everyMs: 200 },
    { when: 'the outbox is empty while closing takes long', closeMs: 150, left: 0, everyMs: 30 },
  ])('when $when, then nothing extra is said', async ({ closeMs, left, everyMs }) => {
    const { lines, io } = recorder();
    await closeReportingDrain(
      () => sleep(closeMs),
      async () => left,
      io,
      everyMs,
    );
    expect(lines).toEqual([]);
  });

  it('when closing fails, then the failure reaches the caller and the reports stop', async () => {
    const { lines, io } = recorder();
    const failing = async () => {
      await sleep(60);
      throw new Error('the audit ledger could not sign its last checkpoint');
    };
    await expect(closeReportingDrain(failing, async () => 7, io, 20)).rejects.toThrow(/last checkpoint/);
    const after = lines.length;
    expect(after).toBeGreaterThan(0);
    await sleep(80);
    expect(lines.length).toBe(after);
  });
});
