import { join, resolve } from 'node:path';
import { auditMigrations, NO_WRITER_ROLE, prepareLedgerWriterRole } from '@flowloom/audit';
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
migration stops the rollout before any new pod takes traffic.

On PostgreSQL it then creates or refreshes the audit ledger's role (FLOWLOOM_AUDIT_DB_ROLE, default
flowloom_audit_writer; "off" skips it): NOLOGIN, allowed only to read and append to the ledger tables,
granted to the user migrate connects as and to FLOWLOOM_AUDIT_DB_ROLE_MEMBERS. The audit service sets
that role on its ledger connections, so PostgreSQL refuses UPDATE, DELETE and TRUNCATE of the ledger
even if a trigger is dropped. Run migrate as the owner of the schema, with CREATEROLE.`,
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
      const { dbRole, dbRoleMembers } = config.audit;
      if (db.kind === 'postgres' && dbRole !== NO_WRITER_ROLE) {
        await prepareLedgerWriterRole(db, dbRole, dbRoleMembers);
        io.out(
          `Audit ledger role ${dbRole}: insert and select only${dbRoleMembers.length > 0 ? `, granted to ${dbRoleMembers.join(', ')}` : ''}.`,
        );
      }
      return 0;
    } finally {
      await db.close();
    }
  },
};
