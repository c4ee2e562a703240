import { describe, expect, it } from 'vitest';
import { hashKey, type KeyRecord } from '../domain/keys.js';
import type { KeyStore } from '../ports/key-store.js';
import { Authenticator } from './authenticate.js';

const SECRET = 'flk_test-secret-0123456789abcdefghijklmnop';
const RECORD: KeyRecord = {
  id: 'k1',
  name: 'test',
  owner: 'me',
  project: null,
  team: null,
  job: null,
  role: 'member',
  models: null,
  hint: 'flk_test',
  createdAt: new Date(0),
  expiresAt: null,
  revokedAt: null,
  rotatedFrom: null,
  createdBy: null,
  rotatedBy: null,
  suspendedAt: null,
  suspension: null,
};

/** Only lookups by hash are used; the database can be switched off. */
function store(state: { up: boolean }): KeyStore {
  const refuse = (): never => {
    throw new Error('not used');
  };
  return {
    findByHash: async (hash) => {
      if (!state.up) throw new Error('connect ECONNREFUSED');
      return hash === hashKey(SECRET) ? RECORD : undefined;
    },
    insert: refuse,
    lineage: refuse,
    suspend: refuse,
    resume: refuse,
    findById: refuse,
    list: refuse,
    revoke: refuse,
    expire: refuse,
    countAdmins: refuse,
    insertBootstrap: refuse,
  };
}

describe('Authenticator when the key store is unreachable', () => {
  it('then a key seen before keeps working past its cache time, and an unseen one gets 503 unavailable', async () => {
    const state = { up: true };
    let now = 0;
    const auth = new Authenticator(store(state), 5_000, () => now);
    expect((await auth.authenticate(SECRET)).id).toBe('k1');
    state.up = false;
    now = 60_000;
    expect((await auth.authenticate(SECRET)).id).toBe('k1');
    await expect(auth.authenticate('flk_never-seen-0123456789abcdefghijklmn')).rejects.toMatchObject({
      code: 'unavailable',
    });
  });
});

/** A key store whose lookups wait until released, counting them. */
function slowStore(): { store: KeyStore; calls: () => number; answer: (record: KeyRecord) => void } {
  let calls = 0;
  let waiting: Array<(record: KeyRecord) => void> = [];
  const base = store({ up: true });
  return {
    store: {
      ...base,
      findByHash: (hash) => {
        calls++;
        if (hash !== hashKey(SECRET)) return Promise.resolve(undefined);
        return new Promise((resolve) => waiting.push(resolve));
      },
    },
    calls: () => calls,
    answer: (record) => {
      const now = waiting;
      waiting = [];
      for (const resolve of now) resolve(record);
    },
  };
}

describe('Authenticator when a cached key expires', () => {
  it('then requests are answered from it at once while one lookup refreshes it, and the refresh counts after', async () => {
    const slow = slowStore();
    let now = 0;
    const auth = new Authenticator(slow.store, 5_000, () => now);
    const first = auth.authenticate(SECRET);
    slow.answer(RECORD);
    expect((await first).id).toBe('k1');

    now = 6_000; // expired: the database is slow to answer the refresh
    const during = await Promise.all([auth.authenticate(SECRET), auth.authenticate(SECRET)]);
    expect(during.map((k) => k.id)).toEqual(['k1', 'k1']);
    expect(slow.calls()).toBe(2); // the first read and one shared refresh

    slow.answer({ ...RECORD, revokedAt: new Date(5_500) });
    await new Promise((resolve) => setImmediate(resolve));
    await expect(auth.authenticate(SECRET)).rejects.toMatchObject({ code: 'key_revoked' });
  });

  it('then a refresh begun before an invalidation does not put back what it read', async () => {
    const slow = slowStore();
    let now = 0;
    const auth = new Authenticator(slow.store, 5_000, () => now);
    const first = auth.authenticate(SECRET);
    slow.answer(RECORD);
    await first;
    now = 6_000;
    await auth.authenticate(SECRET); // starts a refresh
    auth.invalidate(); // e.g. this process revoked the key meanwhile
    slow.answer(RECORD); // the refresh returns the row as it was before
    await new Promise((resolve) => setImmediate(resolve));
    const next = auth.authenticate(SECRET); // not served from the old read: it looks up again
    expect(slow.calls()).toBe(3);
    slow.answer({ ...RECORD, revokedAt: new Date(6_000) });
    await expect(next).rejects.toMatchObject({ code: 'key_revoked' });
  });
});
