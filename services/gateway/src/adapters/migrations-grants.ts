/** A PostgreSQL login name that needs no quoting (the config validates the same shape). */
const LOGIN_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** `login` if it is a plain lowercase PostgreSQL identifier; throws otherwise. */
export function checkLoginName(login: string): string {
  if (!LOGIN_NAME.test(login))
    throw new Error(
      `PostgreSQL login "${login}" must be a plain lowercase identifier such as flowloom_policy`,
    );
  return login;
}

/** The gateway's tables a service of its own (`serve policy|audit`) touches, for `revoke all` before granting. */
export const ADMIN_LOGIN_TABLES = ['api_keys', 'outbox'] as const;

/**
 * SQL granting a login of another service (policy, audit) exactly what `recordedAdminAuthorizer`
 * needs of the gateway's tables, in the current schema: reading api_keys to authenticate admins, and
 * writing, relaying and pruning the outbox rows of their login events. It cannot create, change or
 * delete a key. Run it as the owner of the tables after the migrations (`flowloom migrate` does);
 * running it again gives the same privileges.
 */
export function adminLoginGrantsSql(login: string): string {
  checkLoginName(login);
  return `
do $$
begin
  execute format('grant usage on schema %I to ${login}', current_schema());
end $$;
revoke all on ${ADMIN_LOGIN_TABLES.join(', ')} from ${login};
grant select on schema_migrations to ${login};
grant select on api_keys to ${login};
grant select, insert, update, delete on outbox to ${login};
grant usage, select on sequence outbox_seq_seq to ${login};
`;
}
