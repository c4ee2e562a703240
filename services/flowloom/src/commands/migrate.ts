import { join, resolve } from 'node:path';
import { auditMigrations } from '@flowloom/audit';
import { loadConfig } from '@flowloom/config';
import { gatewayMigrations } from '@flowloom/gateway';
import { policyMigrations } from '@flowloom/policy';
import { type Migration, migrate, openDb } from '@flowloom/store';
import type { Command } from '../command.js';

/** Every service's schema, in the order they depend on each other. */
export const ALL_MIGRATIONS: readonly Migration[] = [
  ...gatewayMigrations,
  ...policyMigrations,
  ...auditMigrations,
];

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'Apply the database migrations of every service, then exit',
  help: `Usage: flowloom migrate

Applies the schema migrations that are not yet applied, on FLOWLOOM_DATABASE_URL (PostgreSQL) or on
the embedded database in FLOWLOOM_DATA_DIR. Safe to run again and from several replicas at once
(an advisory lock serializes them). Services also migrate when they start; a deployment runs this
first (the Helm pre-install/pre-upgrade Job, the compose "migrate" service) so that a failing
migration stops the rollout before any new pod takes traffic.`,
  async run(args, io) {
    if (args.length > 0) throw new Error(`flowloom migrate takes no arguments (got ${args.join(' ')})`);
    const config = loadConfig({ env: io.env });
    const db = await openDb({
      databaseUrl: config.databaseUrl,
      dataDir: join(resolve(config.dataDir), 'db'),
    });
    try {
      const applied = await migrate(db, ALL_MIGRATIONS);
      io.out(
        applied.length === 0
          ? 'Schema is up to date.'
          : `Applied ${applied.length} migration(s): ${applied.join(', ')}`,
      );
      return 0;
    } finally {
      await db.close();
    }
  },
};
