/** The policy service's tables: its login gets reading and writing on each, and nothing else. */
export const POLICY_TABLES = [
  'policy_versions',
  'policy_deployments',
  'policy_promotions',
  'policy_outbox',
  'policy_decisions',
  'policy_interventions',
  'policy_requests',
] as const;

/**
 * SQL granting the policy service's own login (policy.dbLogin, already checked to be a plain
 * identifier) what `serve policy` needs of its tables, in the current schema: no DDL, so it can
 * neither drop a table nor rewrite its history's schema. The gateway's tables it also reads and
 * writes are granted by the gateway's `adminLoginGrantsSql`. Idempotent.
 */
export function policyLoginGrantsSql(login: string): string {
  const tables = POLICY_TABLES.join(', ');
  return `
do $$
begin
  execute format('grant usage on schema %I to ${login}', current_schema());
end $$;
revoke all on ${tables} from ${login};
grant select on schema_migrations to ${login};
grant select, insert, update, delete on ${tables} to ${login};
grant usage, select on sequence policy_deployments_revision_seq, policy_outbox_seq_seq to ${login};
`;
}
