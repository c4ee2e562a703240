import type { Migration } from '@flowloom/store';

export const policyMigrations: Migration[] = [
  {
    id: 'policy/001_versions_deployments_promotions',
    sql: `
create table if not exists policy_versions (
  name text not null,
  version text not null,
  seq integer not null,
  document jsonb not null,
  source text not null,
  format text not null check (format in ('yaml', 'json')),
  author text not null,
  author_key text,
  message text not null,
  previous text,
  created_at timestamptz not null default now(),
  primary key (name, version),
  unique (name, seq)
);
create table if not exists policy_deployments (
  revision bigserial primary key,
  name text not null,
  stable text,
  candidate text,
  candidate_mode text check (candidate_mode in ('shadow', 'canary')),
  percent double precision,
  by_subject text check (by_subject in ('job', 'key')),
  reason text not null,
  actor text not null,
  promotion_id text,
  created_at timestamptz not null default now()
);
create index if not exists policy_deployments_name on policy_deployments (name, revision desc);
create table if not exists policy_promotions (
  id text primary key,
  name text not null,
  version text not null,
  mode text not null check (mode in ('shadow', 'canary', 'enforce')),
  percent double precision,
  by_subject text,
  author text not null,
  requested_by text not null,
  requested_at timestamptz not null default now(),
  status text not null check (status in ('pending', 'applied', 'superseded')),
  approved_by text,
  approved_at timestamptz,
  revision bigint
);
create index if not exists policy_promotions_name on policy_promotions (name, requested_at desc);
create table if not exists policy_outbox (
  seq bigserial primary key,
  id text not null unique,
  event jsonb not null,
  published_at timestamptz
);
create index if not exists policy_outbox_pending on policy_outbox (seq) where published_at is null;
`,
  },
  {
    id: 'policy/002_decisions',
    sql: `
create table if not exists policy_decisions (
  id text primary key,
  request_id text not null,
  at timestamptz not null,
  key_id text,
  job text,
  session text,
  policy text,
  version text,
  mode text,
  verdict text not null,
  intended_verdict text not null,
  enforced boolean not null,
  record jsonb not null
);
create index if not exists policy_decisions_at on policy_decisions (at);
create index if not exists policy_decisions_job on policy_decisions (job, at);
create index if not exists policy_decisions_request on policy_decisions (request_id);
`,
  },
  {
    id: 'policy/003_interventions',
    sql: `
create table if not exists policy_interventions (
  id text primary key,
  decision_id text not null,
  job text,
  at timestamptz not null,
  record jsonb not null
);
create index if not exists policy_interventions_job on policy_interventions (job, decision_id, id);
`,
  },
  {
    // One row per request: JSON text is several times cheaper to insert than jsonb (PGlite above all),
    // and the request-id index was never read.
    id: 'policy/004_decisions_as_text',
    sql: `
alter table policy_decisions alter column record type text using record::text;
drop index if exists policy_decisions_request;
alter table policy_interventions alter column record type text using record::text;
`,
  },
  {
    // Post-call decisions (rules that read the answer) are marked: replay evaluates both phases from
    // each request's pre-call record, which carries the answer too, so it skips them.
    id: 'policy/005_decision_phase',
    sql: `
alter table policy_decisions add column if not exists phase text;
`,
  },
  {
    // Second-person approval, checkable: the author key's lineage when it pushed, and the approver's
    // key, owner and lineage (see the gateway's gateway/004_key_lineage).
    id: 'policy/006_approval_lineage',
    sql: `
alter table policy_versions add column if not exists author_lineage jsonb;
alter table policy_promotions add column if not exists approver jsonb;
`,
  },
  {
    // Every request as its request event tells it, for replay when no decision was recorded for it
    // (no policy was active): the facts a policy would have read, rebuilt, as JSON text.
    id: 'policy/007_requests',
    sql: `
create table if not exists policy_requests (
  request_id text primary key,
  at timestamptz not null,
  answered boolean not null,
  input text not null
);
create index if not exists policy_requests_at on policy_requests (at);
`,
  },
  {
    // An event the bus refused for good (too large for its topic, an invalid record) is parked: kept,
    // out of the relay's way, with why, while a stand-in event holds its place on the audit trail.
    id: 'policy/008_outbox_parking',
    sql: `
alter table policy_outbox add column if not exists parked_at timestamptz;
alter table policy_outbox add column if not exists park_reason text;
create index if not exists policy_outbox_ready on policy_outbox (seq) where published_at is null and parked_at is null;
drop index if exists policy_outbox_pending;
`,
  },
];
