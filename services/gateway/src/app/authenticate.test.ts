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
    findById: refuse,
    list: refuse,
    revoke: refuse,
    expire: refuse,
    countAdmins: refuse,
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
