import { type Db, migrate } from '@flowloom/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gatewayMigrations } from '../src/adapters/migrations.js';
import { SqlKeyStore } from '../src/adapters/sql-key-store.js';
import { SqlOutbox } from '../src/adapters/sql-outbox.js';
import { bootstrapAdmin } from '../src/app/bootstrap-admin.js';
import { KeysAdmin } from '../src/app/keys-admin.js';
import { generateKeySecret, hashKey } from '../src/domain/keys.js';
import { openTestPostgres, type TestDatabase } from './databases.js';

const REPLICAS = 6;

/** What a gateway replica does at start-up, each on its own connection pool to the shared database. */
async function startReplicas(
  database: TestDatabase,
  adminKey: string | undefined,
): Promise<(string | undefined)[]> {
  const pools: Db[] = await Promise.all(Array.from({ length: REPLICAS }, () => database.openAnother()));
  return Promise.all(
    pools.map((db) => bootstrapAdmin(new KeysAdmin(new SqlKeyStore(db), new SqlOutbox(db)), adminKey)),
  );
}

async function adminRows(db: Db): Promise<{ secret_hash: string }[]> {
  const { rows } = await db.query<{ secret_hash: string }>(
    `select secret_hash from api_keys where role = 'admin'`,
  );
  return rows;
}

async function keyCreatedEvents(db: Db): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `select count(*)::int as n from outbox where type = 'dev.flowloom.gateway.key.changed.v1'
     and event->'data'->>'action' = 'created'`,
  );
  return rows[0]?.n ?? -1;
}

describe('bootstrap admin, replicas starting together on one PostgreSQL', () => {
  let database: TestDatabase;

  beforeEach(async () => {
    database = await openTestPostgres();
    await migrate(database.db, gatewayMigrations);
  });
  afterEach(async () => {
    await database?.drop();
  });

  it('when every replica is given FLOWLOOM_ADMIN_KEY, then all start and the key is stored once, with one created event', async () => {
    const adminKey = generateKeySecret();
    const generated = await startReplicas(database, adminKey);
    expect(generated).toEqual(Array.from({ length: REPLICAS }, () => undefined));
    expect(await adminRows(database.db)).toEqual([{ secret_hash: hashKey(adminKey) }]);
    expect(await keyCreatedEvents(database.db)).toBe(1);

    // A later restart finds the key and changes nothing.
    expect(await startReplicas(database, adminKey)).toEqual(
      Array.from({ length: REPLICAS }, () => undefined),
    );
    expect(await adminRows(database.db)).toHaveLength(1);
    expect(await keyCreatedEvents(database.db)).toBe(1);
  });

  it('when no admin key is configured, then exactly one replica generates (and prints) a key, and it is the only admin', async () => {
    const generated = await startReplicas(database, undefined);
    const printed = generated.filter((secret): secret is string => secret !== undefined);
    expect(printed).toHaveLength(1);
    expect(await adminRows(database.db)).toEqual([{ secret_hash: hashKey(printed[0]!) }]);
    expect(await keyCreatedEvents(database.db)).toBe(1);

    // Restarted replicas find an admin and generate nothing more.
    expect((await startReplicas(database, undefined)).every((s) => s === undefined)).toBe(true);
    expect(await adminRows(database.db)).toHaveLength(1);
  });
});
