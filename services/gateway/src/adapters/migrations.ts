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
];
