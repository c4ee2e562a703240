import { describe, expect, it } from 'vitest';
import { SharedStoreFallback } from './shared-store-fallback.js';

/** A store that answers its name, or fails while `down`. */
class Store {
  down = false;
  calls = 0;
  constructor(readonly name: string) {}
  async read(): Promise<string> {
    this.calls++;
    if (this.down) throw new Error(`${this.name} unreachable`);
    return this.name;
  }
  async close(): Promise<void> {}
}

function setup(mode: 'local' | 'closed' = 'local') {
  const shared = new Store('shared');
  const local = new Store('local');
  const clock = { now: 0 };
  const changes: Array<[boolean, string]> = [];
  const recovered: string[] = [];
  let recoverFails = false;
  const fallback = new SharedStoreFallback(shared, local, {
    what: 'signals',
    mode,
    onChange: (degraded, reason) => changes.push([degraded, reason]),
    onRecover: async (store) => {
      if (recoverFails) throw new Error('hand-over failed');
      recovered.push(store.name);
    },
    retryMs: 1_000,
    now: () => clock.now,
  });
  return {
    shared,
    local,
    clock,
    changes,
    recovered,
    fallback,
    failRecovery: (v: boolean) => (recoverFails = v),
  };
}

describe('SharedStoreFallback', () => {
  it('when the shared store fails, then the local one serves until the retry is due, and the shared one again after it recovers', async () => {
    const { shared, clock, changes, recovered, fallback } = setup();
    expect(await fallback.use((s) => s.read())).toBe('shared');
    shared.down = true;
    expect(await fallback.use((s) => s.read())).toBe('local');
    expect(fallback.status()).toBe('degraded: shared unreachable; using local signals');
    expect(changes).toEqual([[true, 'shared unreachable']]);

    shared.down = false;
    const callsBefore = shared.calls;
    clock.now = 999; // not due: the shared store is not asked
    expect(await fallback.use((s) => s.read())).toBe('local');
    expect(shared.calls).toBe(callsBefore);

    clock.now = 1_000;
    expect(await fallback.use((s) => s.read())).toBe('shared');
    expect(recovered).toEqual(['shared']);
    expect(fallback.status()).toBe('ok');
    expect(changes.at(-1)).toEqual([false, 'shared signals store is back']);
  });

  it('when handing over to the recovered store fails, then the fallback stays in use and tries again later', async () => {
    const { shared, clock, fallback, failRecovery, recovered } = setup();
    shared.down = true;
    await fallback.use((s) => s.read());
    shared.down = false;
    failRecovery(true);
    clock.now = 1_000;
    expect(await fallback.use((s) => s.read())).toBe('local');
    expect(fallback.degraded).toBe(true);
    failRecovery(false);
    clock.now = 2_000;
    expect(await fallback.use((s) => s.read())).toBe('shared');
    expect(recovered).toEqual(['shared']);
  });

  it('when closed, then an outage refuses with unavailable, and a probe reports it without throwing', async () => {
    const { shared, local, fallback } = setup('closed');
    shared.down = true;
    await expect(fallback.use((s) => s.read())).rejects.toMatchObject({
      code: 'unavailable',
      retryAfterSeconds: 1,
    });
    expect(local.calls).toBe(0);
    expect(await fallback.probe((s) => s.read())).toBe('degraded: shared unreachable; refusing requests');
  });
});
