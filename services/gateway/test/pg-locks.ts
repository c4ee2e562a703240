import type { Queryable } from '@flowloom/store';

/**
 * Waits until `count` statements starting with `statement` wait for a lock on the test PostgreSQL:
 * a statement held there has reached the server, so what happens to its connection meanwhile (a cut)
 * is what happens to a statement in flight.
 */
export async function untilWaitingForLock(db: Queryable, statement: string, count = 1): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await db.query<{ waiting: number }>(
      `select count(*)::int as waiting from pg_stat_activity
        where wait_event_type = 'Lock' and starts_with(ltrim(query), $1)`,
      [statement],
    );
    if ((rows[0]?.waiting ?? 0) >= count) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${count} "${statement}" statements to wait for a lock`);
}

/** A transaction holding the locks `lock` takes until `release()` is called (a hand-over sealing rows, say). */
export async function holdLocks(
  db: { transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> },
  lock: (tx: Queryable) => Promise<unknown>,
): Promise<{ release(): Promise<void> }> {
  let release = (): void => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked = (): void => {};
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const holder = db.transaction(async (tx) => {
    await lock(tx);
    locked();
    await released;
  });
  await Promise.race([isLocked, holder]);
  return {
    release: async () => {
      release();
      await holder;
    },
  };
}
