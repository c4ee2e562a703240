import { afterEach, describe, expect, it, vi } from 'vitest';
import { RelayLoop, type RelayLoopOptions, type RoundLeft } from './relay-loop.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A loop whose rounds answer from `script` (then 'nothing'), recording when each started (ms since start). */
function scripted(script: Array<RoundLeft | Error>, options: Partial<RelayLoopOptions> = {}) {
  const starts: number[] = [];
  let hold: Promise<void> | undefined;
  const t0 = performance.now();
  const loop = new RelayLoop({
    round: async () => {
      starts.push(performance.now() - t0);
      if (hold) await hold;
      const next = script.shift() ?? 'nothing';
      if (next instanceof Error) throw next;
      return next;
    },
    gatherMs: 100,
    idleMs: 60_000,
    backOffMs: 60_000,
    ...options,
  });
  return {
    loop,
    starts,
    /** The rounds that start from now on wait in flight until the returned function is called. */
    holdRounds(): () => void {
      let release: () => void = () => {};
      hold = new Promise<void>((r) => {
        release = r;
      });
      return () => {
        hold = undefined;
        release();
      };
    },
  };
}

const loops: RelayLoop[] = [];
afterEach(async () => {
  await Promise.all(loops.splice(0).map((l) => l.stop()));
});

describe('RelayLoop', () => {
  it('when whole batches are waiting, then rounds follow at once; a partial one waits out the gather time after the last round', async () => {
    const { loop, starts } = scripted(['batches', 'batches', 'some']);
    loops.push(loop);
    loop.start();
    await sleep(300);
    expect(starts).toHaveLength(4);
    expect(starts[2]! - starts[0]!).toBeLessThan(50);
    // The third round left a partial batch: the fourth starts a gather time after the third ended.
    expect(starts[3]! - starts[2]!).toBeGreaterThanOrEqual(95);
    // Then nothing is left: the loop sits in its (one minute) idle wait.
    await sleep(150);
    expect(starts).toHaveLength(4);
  });

  it('when a notice comes during the idle wait, then the next round starts once the gather time since the last round has passed', async () => {
    const { loop, starts } = scripted([]);
    loops.push(loop);
    loop.start();
    await sleep(20);
    loop.notify();
    await sleep(40);
    expect(starts).toHaveLength(1);
    await sleep(100);
    expect(starts).toHaveLength(2);
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(95);
    // Long after the last round, a notice brings the next one at once.
    await sleep(150);
    loop.notify();
    await sleep(20);
    expect(starts).toHaveLength(3);
  });

  it('when notices come during a round, then the next round comes the gather time after it ended, instead of the idle poll', async () => {
    const { loop, starts, holdRounds } = scripted([]);
    loops.push(loop);
    const release = holdRounds();
    const t0 = performance.now();
    loop.start();
    await sleep(10);
    loop.notify();
    // The round takes longer than the gather time: the events that came during it still gather.
    await sleep(140);
    const ended = performance.now() - t0;
    release();
    await sleep(60);
    expect(starts).toHaveLength(1);
    await sleep(100);
    expect(starts).toHaveLength(2);
    expect(starts[1]! - ended).toBeGreaterThanOrEqual(95);
  });

  it('when rounds fail, then the loop backs off, doubling the wait with each failure in a row', async () => {
    const errors: unknown[] = [];
    const down = () => new Error('down');
    const { loop, starts } = scripted([down(), down(), down(), down()], {
      backOffMs: 100,
      gatherMs: 10,
      onError: (e) => errors.push(e),
    });
    loops.push(loop);
    loop.start();
    // Tries at 0, 100, 300 and 700 ms, then a success at 1.5 s.
    await vi.waitFor(() => expect(starts).toHaveLength(5), { timeout: 3_000, interval: 20 });
    const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(95);
    expect(gaps[1]).toBeGreaterThanOrEqual(195);
    expect(gaps[2]).toBeGreaterThanOrEqual(395);
    expect(gaps[3]).toBeGreaterThanOrEqual(795);
    expect(errors).toHaveLength(4);
  });

  it('when rounds fail, then notices of new events bring a try forward at most once a second', async () => {
    const { loop, starts } = scripted([new Error('down')], { backOffMs: 60_000, gatherMs: 10 });
    loops.push(loop);
    loop.start();
    await sleep(20);
    // Within a second of the failure, notices (one per request) leave the back-off alone...
    for (let i = 0; i < 10; i++) {
      loop.notify();
      await sleep(20);
    }
    expect(starts).toHaveLength(1);
    // ...after it, one brings the next try forward.
    await sleep(1_000 - 220 + 50);
    loop.notify();
    await vi.waitFor(() => expect(starts).toHaveLength(2), { timeout: 500, interval: 10 });
  });

  it('when the sink recovers while a failing round is out, then the next round does not back off', async () => {
    const { loop, starts, holdRounds } = scripted([new Error('down')], { backOffMs: 60_000, gatherMs: 50 });
    loops.push(loop);
    const release = holdRounds();
    loop.start();
    await sleep(10);
    loop.retryNow();
    release();
    await sleep(150);
    expect(starts).toHaveLength(2);
  });

  it('when the first round after a recovery fails, then the back-off starts again from its shortest wait', async () => {
    const down = () => new Error('down');
    const { loop, starts } = scripted([down(), down(), down(), down()], { backOffMs: 200, gatherMs: 10 });
    loops.push(loop);
    loop.start();
    // Tries at 0, 200 and 600 ms; the next back-off would be 800 ms.
    await vi.waitFor(() => expect(starts).toHaveLength(3), { timeout: 2_000, interval: 10 });
    await sleep(50);
    // The sink answers a probe: the fourth try comes at once and still fails.
    loop.retryNow();
    await vi.waitFor(() => expect(starts).toHaveLength(4), { timeout: 500, interval: 10 });
    // From where the outage had taken the back-off, the fifth would wait 1.6 s; started over, 200 ms.
    await vi.waitFor(() => expect(starts).toHaveLength(5), { timeout: 1_000, interval: 10 });
    expect(starts[4]! - starts[3]!).toBeLessThan(600);
  });

  it('when stopped during a wait, then stop returns at once and no timer is left', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const { loop, starts } = scripted(['some']);
    loop.start();
    await sleep(10);
    const stopping = performance.now();
    await loop.stop();
    expect(performance.now() - stopping).toBeLessThan(50);
    expect(starts).toHaveLength(1);
    expect(timers()).toBeLessThanOrEqual(before);
  });
});
