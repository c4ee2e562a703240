import type { Migration } from '@flowloom/store';

/** The ledger tables, written once: every one refuses UPDATE, DELETE and TRUNCATE. */
export const LEDGER_TABLES = [
  'audit_meta',
  'audit_entries',
  'audit_node_tiles',
  'audit_checkpoints',
  'audit_keys',
  'audit_prunings',
] as const;

/**
 * The hashes of nodes given by position and completion size ($1, $2: bigint[]): each a 32-byte
 * slice of the one tile that completed it, the first tile ending at or after that size.
 */
export const READ_NODES_QUERY = `select u.ord, substring(t.hashes from ((u.pos - t.node_base) * 32 + 1)::int for 32) as hash
  from unnest($1::bigint[], $2::bigint[]) with ordinality as u(pos, completion, ord)
  cross join lateral (
    select n.node_base, n.start_size, n.hashes from audit_node_tiles n
     where n.end_size >= u.completion order by n.end_size limit 1
  ) t
 where t.start_size < u.completion`;

/**
 * What full-text search finds in an entry: every string value of the event (never keys, numbers or
 * booleans), as the `entry` column's JSON text. Callers add an exception handler for entries that
 * are not JSON (only possible by tampering).
 */
const SEARCH_VECTOR_SQL = `json_to_tsvector('simple', entry::json, '["string"]')`;

/** What pruning forgets in the search index: the entry's words and people (see audit_prune). */
const FORGET_INDEX_ROWS = `update audit_index i
     set pruned = true, actor = null, key_id = null, project = null, job = null, search = ''::tsvector
    from audit_entries e
   where i.idx = e.idx and e.pruned and not i.pruned and i.event_type = p_type and i.idx < p_through`;

/**
 * The retention function, as first defined and as redefined when the words moved apart
 * (`forgetIndex`: the statements clearing what the search index holds of pruned entries).
 */
const pruneFunctionSql = (
  forgetIndex: string,
): string => `create or replace function audit_prune(p_type text, p_before timestamptz, p_through bigint, p_actor text)
returns bigint language plpgsql security definer set search_path from current as $$
declare
  n bigint;
begin
  perform set_config('flowloom.audit_prune', 'on', true);
  -- Candidates come from the search index (by type), which covers every entry with content.
  update audit_entries
     set entry = null, subject = null, actor = null, key_id = null, project = null, job = null, pruned = true
   where idx in (select i.idx from audit_index i where i.event_type = p_type and i.idx < p_through and not i.pruned)
     and event_time < p_before and not pruned;
  get diagnostics n = row_count;
  -- The index keeps the entry's type, time order and outcome, and forgets its words and people.
  ${forgetIndex}
  perform set_config('flowloom.audit_prune', 'off', true);
  if n > 0 then
    insert into audit_prunings (event_type, cutoff, through_size, pruned, actor)
    values (p_type, p_before, p_through, n, p_actor);
  end if;
  return n;
end $$;`;

// The same SQL runs on PostgreSQL and PGlite. Retention is the one exception to write-once: the
// SECURITY DEFINER function audit_prune may null an entry's content (never its leaf hash, index,
// type or time) while it sets the transaction-local flag flowloom.audit_prune, and records the
// pruning in audit_prunings. The guard trigger checks exactly that shape of change.
export const auditMigrations: readonly Migration[] = [
  {
    id: 'audit/001_ledger',
    sql: `
create table if not exists audit_meta (
  name text primary key,
  value text not null,
  created_at timestamptz not null default now()
);

create table if not exists audit_entries (
  idx bigint primary key check (idx >= 0),
  event_id text not null unique,
  leaf_hash bytea not null check (length(leaf_hash) = 32),
  event_time timestamptz not null,
  event_type text not null,
  source text not null,
  subject text,
  actor text,
  key_id text,
  project text,
  job text,
  outcome text,
  entry text,
  pruned boolean not null default false,
  appended_at timestamptz not null default now(),
  check (pruned = (entry is null))
);
-- Appends stay cheap: besides the keys, only a BRIN index (event time follows the index order).
-- Everything else is looked up through audit_index.
create index if not exists audit_entries_time on audit_entries using brin (event_time);

-- The search index of the ledger: derived from audit_entries in the background, never part of what
-- is verified, rebuildable at any time (it is not write-once; retention deletes from it).
create table if not exists audit_index (
  idx bigint primary key,
  event_type text not null,
  actor text,
  key_id text,
  project text,
  job text,
  outcome text,
  pruned boolean not null default false,
  search tsvector not null
);
create index if not exists audit_index_type on audit_index (event_type, idx);
create index if not exists audit_index_content on audit_index (event_type, idx) where not pruned;
create index if not exists audit_index_actor on audit_index (actor, idx) where actor is not null;
create index if not exists audit_index_key on audit_index (key_id, idx) where key_id is not null;
create index if not exists audit_index_project on audit_index (project, idx) where project is not null;
create index if not exists audit_index_job on audit_index (job, idx) where job is not null;
create index if not exists audit_index_outcome on audit_index (outcome, idx) where outcome is not null;
create index if not exists audit_index_search on audit_index using gin (search);

create table if not exists audit_node_tiles (
  start_size bigint primary key check (start_size >= 0),
  end_size bigint not null unique,
  node_base bigint not null,
  hashes bytea not null,
  check (end_size > start_size)
);
alter table audit_node_tiles alter column hashes set storage external;

create table if not exists audit_checkpoints (
  id bigserial primary key,
  tree_size bigint not null,
  root_hash bytea not null check (length(root_hash) = 32),
  key_id text not null,
  note text not null,
  issued_at timestamptz not null default now(),
  unique (tree_size, key_id)
);

create table if not exists audit_keys (
  verifier_key text primary key,
  key_id text not null,
  added_at timestamptz not null default clock_timestamp()
);

create table if not exists audit_prunings (
  id bigserial primary key,
  event_type text not null,
  cutoff timestamptz not null,
  through_size bigint not null,
  pruned bigint not null,
  actor text not null,
  at timestamptz not null default now()
);

create or replace function audit_refuse_change() returns trigger language plpgsql as $$
begin
  raise exception 'audit ledger: % on % is refused; the ledger tables are write-once', tg_op, tg_table_name
    using errcode = 'insufficient_privilege';
end $$;

create or replace function audit_entries_guard() returns trigger language plpgsql as $$
begin
  if tg_op = 'UPDATE'
     and current_setting('flowloom.audit_prune', true) = 'on'
     and not old.pruned and new.pruned
     and new.idx = old.idx and new.event_id = old.event_id and new.leaf_hash = old.leaf_hash
     and new.event_time = old.event_time and new.event_type = old.event_type and new.source = old.source
     and new.outcome is not distinct from old.outcome and new.appended_at = old.appended_at
     and new.entry is null and new.subject is null and new.actor is null
     and new.key_id is null and new.project is null and new.job is null
  then
    return new;
  end if;
  raise exception 'audit ledger: % on audit_entries is refused; entries are write-once (retention goes through audit_prune)', tg_op
    using errcode = 'insufficient_privilege';
end $$;

create or replace trigger audit_entries_write_once before update or delete on audit_entries
  for each row execute function audit_entries_guard();
create or replace trigger audit_entries_no_truncate before truncate on audit_entries
  for each statement execute function audit_refuse_change();
create or replace trigger audit_meta_write_once before update or delete on audit_meta
  for each row execute function audit_refuse_change();
create or replace trigger audit_meta_no_truncate before truncate on audit_meta
  for each statement execute function audit_refuse_change();
create or replace trigger audit_node_tiles_write_once before update or delete on audit_node_tiles
  for each row execute function audit_refuse_change();
create or replace trigger audit_node_tiles_no_truncate before truncate on audit_node_tiles
  for each statement execute function audit_refuse_change();
create or replace trigger audit_checkpoints_write_once before update or delete on audit_checkpoints
  for each row execute function audit_refuse_change();
create or replace trigger audit_checkpoints_no_truncate before truncate on audit_checkpoints
  for each statement execute function audit_refuse_change();
create or replace trigger audit_keys_write_once before update or delete on audit_keys
  for each row execute function audit_refuse_change();
create or replace trigger audit_keys_no_truncate before truncate on audit_keys
  for each statement execute function audit_refuse_change();
create or replace trigger audit_prunings_write_once before update or delete on audit_prunings
  for each row execute function audit_refuse_change();
create or replace trigger audit_prunings_no_truncate before truncate on audit_prunings
  for each statement execute function audit_refuse_change();

-- What full-text search finds in an entry: every string value of the event. An entry that is not
-- JSON (only possible by tampering) is indexed as plain text rather than stopping the indexer.
create or replace function audit_search_vector(entry text) returns tsvector language plpgsql immutable as $$
begin
  return jsonb_to_tsvector('simple', entry::jsonb, '["string"]');
exception when others then
  return to_tsvector('simple', entry);
end $$;

${pruneFunctionSql(`${FORGET_INDEX_ROWS};`)}
`,
  },
  {
    id: 'audit/002_read_nodes',
    // Proofs read their nodes through a function so the statement is planned once per connection,
    // not per proof (PL/pgSQL caches the plan; planning cost as much as running it). PostgreSQL now
    // runs READ_NODES_QUERY as a named statement instead; PGlite still calls this.
    sql: `
create or replace function audit_read_nodes(p_positions bigint[], p_completions bigint[])
returns table (ord bigint, hash bytea) language plpgsql stable as $$
begin
  return query ${READ_NODES_QUERY};
end $$;
`,
  },
  {
    id: 'audit/003_search_vector_from_json',
    // The same words, read from the JSON text as it comes rather than from a jsonb tree built (keys
    // sorted) only to be walked once: about a tenth less work per indexed entry. Positions now follow
    // the entry's order instead of jsonb's; plainto_tsquery's AND of words does not use them, and
    // entries indexed before keep their vectors.
    sql: `
create or replace function audit_search_vector(entry text) returns tsvector language plpgsql immutable as $$
begin
  return ${SEARCH_VECTOR_SQL};
exception when others then
  return to_tsvector('simple', entry);
end $$;
`,
  },
  {
    id: 'audit/004_index_progress',
    // Entries [0, upto) are all in audit_index: advanced by the statement that indexes each batch,
    // so a start reads where to resume in one row instead of counting the index (0.14 s at 1M
    // entries on PGlite, growing with the log). One row, updated in place: derived like audit_index,
    // not part of the ledger. No row yet: the start finds the first gap once and writes it.
    sql: `
create table if not exists audit_index_progress (
  one boolean primary key default true check (one),
  upto bigint not null check (upto >= 0)
);
`,
  },
  {
    id: 'audit/005_search_words_apart',
    // The words of an entry (a tsvector and its GIN index: two thirds of indexing an entry) move to
    // a table of their own, filled after the attributes, when the database has time and before a
    // text query; the attributes alone keep up with a sustained stream. The vectors indexed so far
    // move over, pruned entries' empty ones included, so the first gap of the table is where its
    // words stop; the GIN index is built once they are in (faster than row by row).
    sql: `
create table if not exists audit_words (
  idx bigint primary key,
  search tsvector not null
);
insert into audit_words (idx, search) select idx, search from audit_index on conflict (idx) do nothing;
create index if not exists audit_words_search on audit_words using gin (search);
drop index if exists audit_index_search;
alter table audit_index alter column search set default ''::tsvector;

create table if not exists audit_words_progress (
  one boolean primary key default true check (one),
  upto bigint not null check (upto >= 0)
);
insert into audit_words_progress (one, upto) select one, upto from audit_index_progress on conflict (one) do nothing;

${pruneFunctionSql(`with forgotten as (
    ${FORGET_INDEX_ROWS}
    returning i.idx
  )
  update audit_words w set search = ''::tsvector from forgotten f where w.idx = f.idx;`)}
`,
  },
  {
    id: 'audit/006_words_pending_list',
    // New words wait in the GIN index's pending list until it outgrows its limit; the insert that
    // crosses it then merges the whole list into the index. With the default 4 MB that one insert
    // held the embedded database's only thread for about 470 ms (the appends and every query waited
    // behind it); at 1 MB the longest took about 160 ms, for the same total cost (measured on PGlite:
    // 100,000 entries' words, 133 and 135 µs an entry). A text query also reads less of the list.
    sql: `alter index audit_words_search set (gin_pending_list_limit = 1024);`,
  },
];

/** The derived tables the service keeps up to date in place (not write-once). */
export const INDEX_TABLES = [
  'audit_index',
  'audit_index_progress',
  'audit_words',
  'audit_words_progress',
] as const;

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function checkRoleName(role: string): string {
  if (!ROLE_NAME.test(role)) throw new Error(`role name "${role}" must be a plain lowercase identifier`);
  return role;
}

/**
 * SQL that creates (once) or refreshes a PostgreSQL NOLOGIN role allowed only to read and append to
 * the ledger, and to run the audited retention function, in the current schema, and makes the user
 * running it and `members` members of it. Run it as the owner of the tables after the migrations
 * (`flowloom migrate` does); the audit service then connects with that role set. Even a compromised
 * service cannot then update, delete or truncate ledger rows, nor drop a trigger: PostgreSQL refuses.
 * Replicas may run it at once: a transaction-level advisory lock serializes them.
 */
export function ledgerWriterRoleSql(role = 'flowloom_audit_writer', members: readonly string[] = []): string {
  checkRoleName(role);
  const tables = LEDGER_TABLES.join(', ');
  const grants = members.map((member) => `grant ${role} to ${checkRoleName(member)};\n`).join('');
  return `
select pg_advisory_xact_lock(7412);
do $$
begin
  if not exists (select 1 from pg_roles where rolname = '${role}') then
    create role ${role} nologin;
  end if;
  execute format('grant usage on schema %I to ${role}', current_schema());
  -- The service sets the role on connecting, which takes membership (a superuser has it already).
  if not pg_has_role(current_user, '${role}', 'MEMBER') then
    execute format('grant ${role} to %I', current_user);
  end if;
end $$;
revoke all on ${tables} from ${role};
grant select, insert on ${tables} to ${role};
grant select on schema_migrations to ${role};
grant select, insert, update, delete on ${INDEX_TABLES.join(', ')} to ${role};
grant usage, select on sequence audit_checkpoints_id_seq, audit_prunings_id_seq to ${role};
grant execute on function audit_prune(text, timestamptz, bigint, text) to ${role};
grant execute on function audit_read_nodes(bigint[], bigint[]) to ${role};
${grants}`;
}
