import { join, resolve } from 'node:path';
import { auditMigrations, NO_WRITER_ROLE, prepareLedgerWriterRole } from '@flowloom/audit';
import { type Config, loadConfig } from '@flowloom/config';
import { adminLoginGrantsSql, checkLoginName, gatewayMigrations } from '@flowloom/gateway';
import { policyLoginGrantsSql, policyMigrations } from '@flowloom/policy';
import { type Db, type Migration, migrate, openDb } from '@flowloom/store';
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
even if a trigger is dropped. Run migrate as the owner of the schema, with CREATEROLE.

Services that connect as logins of their own (FLOWLOOM_POLICY_DB_LOGIN, FLOWLOOM_AUDIT_DB_LOGIN)
get exactly what they need, again on every run: the policy login reads and writes the policy tables;
the audit login becomes a member of the ledger role; both read api_keys (admin authentication) and
write the outbox (their admins' login events). Neither may create, alter or drop anything. Create
the logins first (CREATE ROLE flowloom_policy LOGIN PASSWORD '...'); migrate never sets passwords.`,
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
      const { dbRole, dbLogin: auditLogin } = config.audit;
      const dbRoleMembers = [...config.audit.dbRoleMembers, ...(auditLogin ? [auditLogin] : [])];
      if (db.kind === 'postgres' && dbRole !== NO_WRITER_ROLE) {
        if (auditLogin) await requireLogin(db, auditLogin, 'audit.dbLogin (FLOWLOOM_AUDIT_DB_LOGIN)');
        await prepareLedgerWriterRole(db, dbRole, dbRoleMembers);
        io.out(
          `Audit ledger role ${dbRole}: insert and select only${dbRoleMembers.length > 0 ? `, granted to ${dbRoleMembers.join(', ')}` : ''}.`,
        );
      }
      for (const line of await grantServiceLogins(db, config)) io.out(line);
      return 0;
    } finally {
      await db.close();
    }
  },
};

/** Fails, saying what to do, unless `login` is an existing PostgreSQL role that can log in. */
async function requireLogin(db: Db, login: string, setting: string): Promise<void> {
  checkLoginName(login);
  const { rows } = await db.query<{ login: boolean; self: boolean }>(
    'select rolcanlogin as login, rolname = current_user as self from pg_roles where rolname = $1',
    [login],
  );
  // Granting "exactly" starts with revoking: done to the owner, it would lock migrate itself out.
  if (rows[0]?.self)
    throw new Error(
      `${setting} is "${login}", the user flowloom migrate runs as, which owns the schema. Fix: unset it (that service then runs with the owner's rights), or name a login of its own.`,
    );
  if (rows[0]?.login !== true)
    throw new Error(
      `${setting} is "${login}", which is not ${rows[0] ? 'a role that can log in' : 'a PostgreSQL role'}. Fix: create it first (CREATE ROLE ${login} LOGIN PASSWORD '...'), then run flowloom migrate again.`,
    );
}

/**
 * Grants the policy and audit services' own logins (policy.dbLogin, audit.dbLogin) what each needs,
 * once the schema exists; returns what it did, a line each. The audit login's ledger role membership
 * comes with the ledger role, above.
 */
async function grantServiceLogins(db: Db, config: Config): Promise<string[]> {
  const policyLogin = config.policy.dbLogin;
  const auditLogin = config.audit.dbLogin;
  if (!policyLogin && !auditLogin) return [];
  if (db.kind !== 'postgres')
    return ['Service logins (policy.dbLogin, audit.dbLogin) apply to PostgreSQL only: ignored here.'];
  const lines: string[] = [];
  if (policyLogin) {
    await requireLogin(db, policyLogin, 'policy.dbLogin (FLOWLOOM_POLICY_DB_LOGIN)');
    await db.exec(policyLoginGrantsSql(policyLogin) + adminLoginGrantsSql(policyLogin));
    lines.push(
      `Policy login ${policyLogin}: reads and writes the policy tables, reads api_keys, writes the outbox.`,
    );
  }
  if (auditLogin) {
    if (config.audit.dbRole === NO_WRITER_ROLE)
      throw new Error(
        'audit.dbLogin (FLOWLOOM_AUDIT_DB_LOGIN) gets its ledger rights through the ledger role, which audit.dbRole=off turns off. Fix: set FLOWLOOM_AUDIT_DB_ROLE to a role name (default flowloom_audit_writer), or unset FLOWLOOM_AUDIT_DB_LOGIN and let the audit service connect as the schema owner.',
      );
    await db.exec(adminLoginGrantsSql(auditLogin));
    lines.push(
      `Audit login ${auditLogin}: member of ${config.audit.dbRole} (ledger: insert and select only), reads api_keys, writes the outbox.`,
    );
  }
  return lines;
}
