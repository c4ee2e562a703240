import type { Migration } from '@flowloom/store';

export const gatewayMigrations: Migration[] = [
  {
    id: 'gateway/001_api_keys',
    sql: `
create table if not exists api_keys (
  id uuid primary key,
  secret_hash text not null unique,
  hint text not null,
  name text not null,
  owner text not null,
  project text,
  team text,
  role text not null check (role in ('admin', 'member')),
  models text[],
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  rotated_from uuid references api_keys(id)
);
create index if not exists api_keys_project on api_keys (project);
`,
  },
  {
    id: 'gateway/002_outbox',
    sql: `
create table if not exists outbox (
  seq bigserial primary key,
  id uuid not null unique,
  type text not null,
  subject text,
  event jsonb not null,
  created_at timestamptz not null default now(),
  published_at timestamptz
);
create index if not exists outbox_unpublished on outbox (seq) where published_at is null;
`,
  },
  {
    id: 'gateway/003_key_job',
    sql: `alter table api_keys add column if not exists job text;`,
  },
  {
    // Who created each key (the creating admin key; a rotation keeps the old key's creator) and which
    // admin key rotated it (its holder was handed the new secret): second-person approval follows
    // these links to tell whether two keys could be in one person's hands. Keys from before have none.
    id: 'gateway/004_key_lineage',
    sql: `
alter table api_keys add column if not exists created_by uuid references api_keys(id);
alter table api_keys add column if not exists rotated_by uuid references api_keys(id);
`,
  },
  {
    // A suspension (by a policy's suspend_key) is lifted by an admin, unlike a revocation; what
    // suspended the key (decision, policy, rule, reason) is kept with it for the refusal message.
    id: 'gateway/005_key_suspension',
    sql: `
alter table api_keys add column if not exists suspended_at timestamptz;
alter table api_keys add column if not exists suspension jsonb;
`,
  },
  {
    // A job policy bound to the key (`flowloom run --policy`): a policy version id, evaluated for the
    // key's requests next to the active bundle. Additive: older keys have none.
    id: 'gateway/006_key_policy',
    sql: `alter table api_keys add column if not exists policy text;`,
  },
  {
    // What each replica counts locally while Redis is unreachable (limitsFallback: local), batch by
    // batch, so that it reaches Redis once back even if that replica died; a batch is deleted once
    // Redis applied it (Redis remembers each batch id, so a retry adds nothing).
    id: 'gateway/007_limits_journal',
    sql: `
create table if not exists limits_journal (
  seq bigserial primary key,
  id uuid not null unique,
  replica text not null,
  counters jsonb not null,
  created_at timestamptz not null default now()
);
`,
  },
  {
    // One row per replica and outage instead of one per replica per second: a replica adds to its row
    // until a hand-over seals it (a sealed row never changes, so it is handed over once under its id;
    // the replica goes on in a new row). `outage` tells a replica's own rows from those it seeds from.
    id: 'gateway/008_limits_journal_rows',
    sql: `
alter table limits_journal add column if not exists outage text;
alter table limits_journal add column if not exists sealed boolean not null default false;
`,
  },
  {
    // Idempotent journal writes: each write to a row carries its seq (1, 2, ...) and the row keeps the
    // last it applied, so a write retried after a lost reply is not added twice. A row handed over is
    // emptied and kept a day (handed_at) instead of deleted, so a late retry still finds what it held.
    // Rows from before have written 0: only the replicas of before append to them.
    id: 'gateway/009_limits_journal_writes',
    sql: `
alter table limits_journal add column if not exists written integer not null default 0;
alter table limits_journal add column if not exists handed_at timestamptz;
`,
  },
  {
    // An event the bus refused for good (too large for its topic, an invalid record) is parked: kept
    // here, out of the relay's way, with why, until an admin publishes it again. Retention deletes only
    // published rows, so a parked one stays. The relay reads pending rows through the new index.
    id: 'gateway/010_outbox_parking',
    sql: `
alter table outbox add column if not exists parked_at timestamptz;
alter table outbox add column if not exists park_reason text;
create index if not exists outbox_pending on outbox (seq) where published_at is null and parked_at is null;
drop index if exists outbox_unpublished;
create index if not exists outbox_parked on outbox (seq) where parked_at is not null;
`,
  },
];
