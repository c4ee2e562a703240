import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isEventsRefused } from '@flowloom/bus';
import { kafkaWithLimitedTopics, type LimitedKafka } from '@flowloom/bus/testing';
import {
  type CloudEvent,
  createEvent,
  GATEWAY_REQUEST_COMPLETED,
  OUTBOX_EVENT_PARKED,
  OUTBOX_EVENT_REDRIVEN,
  POLICY_VERSION_PUSHED,
} from '@flowloom/contracts';
import { canonicalize } from '@flowloom/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall } from '../bench/processes.js';
import { freshDatabase } from '../faults/engines.js';
import { CLI, distributedServices, type Service } from '../faults/services.js';
import { tearDown } from '../faults/teardown.js';
import { until } from '../faults/until.js';
import { cleanEnv, runCli } from './cli-support.js';

// Parking across processes: `flowloom serve gateway|policy|audit` on PostgreSQL and the shared Kafka,
// whose topics for this run (a prefix of their own) were created with a small max.message.bytes. An
// event too large for its topic is parked by its service's relay; the audit service's ledger, read
// through its query API, must hold the stand-in (the parked event's id and hash), the events written
// after it, and, once the limit is raised and an admin redrives with `flowloom outbox parked`, the
// parked event itself, exactly once and with the hash its stand-in announced.

const ADMIN = 'flk_e2e-outbox-parking-admin-0123456789';
/** Policy versions carry their document: one with a long description is larger than this. */
const POLICY_TOPIC_LIMIT = 16_384;

let kafka: LimitedKafka | undefined;
let database: { url: string; drop(): Promise<void> } | undefined;
let work = '';
const services: Service[] = [];
let gateway: Service;
let policy: Service;
let audit: Service;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'flowloom-e2e-parking-'));
  kafka = await kafkaWithLimitedTopics(
    'e2e-parking',
    ['gateway.request', 'policy.version'],
    POLICY_TOPIC_LIMIT,
  );
  database = await freshDatabase('flowloom_e2e_parking');
  const common: Record<string, string> = {
    FLOWLOOM_DATABASE_URL: database.url,
    FLOWLOOM_KAFKA_BROKERS: process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092',
    // The services' topics are the ones created above, limits included.
    FLOWLOOM_KAFKA_TOPIC_PREFIX: kafka.topic('x').slice(0, -'.x'.length),
    FLOWLOOM_ADMIN_KEY: ADMIN,
    FLOWLOOM_LOG_LEVEL: 'fatal',
    FLOWLOOM_AUDIT_CHECKPOINT_INTERVAL_MS: '60000',
  };
  await promisify(execFile)('node', [CLI, 'migrate'], { env: cleanEnv(common) });
  ({ gateway, policy, audit } = await distributedServices(common, work));
  services.push(gateway, policy, audit);
  await Promise.all(services.map((s) => s.start()));
}, 180_000);

afterAll(async () => {
  await tearDown({ services, database, work });
  await kafka?.close();
}, 60_000);

interface Entry {
  eventId: string;
  type: string;
  source: string;
  event: CloudEvent<Record<string, unknown>> | null;
}

/** The ledger's entries matching `query` (`type=...&job=...`), oldest first, through the audit API. */
async function ledger(query: string): Promise<Entry[]> {
  return (
    await adminCall<{ data: Entry[] }>(
      audit.url,
      ADMIN,
      'GET',
      `/api/v1/audit/entries?${query}&limit=1000&order=asc`,
    )
  ).data;
}

/** The ledger entry of one event, once it is there. */
async function ledgerEntry(eventId: string): Promise<Entry | undefined> {
  const res = await fetch(`${audit.url}/api/v1/audit/events/${eventId}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  if (res.status === 404) return undefined;
  expect(res.status).toBe(200);
  return (await res.json()) as Entry;
}

const sha256 = (event: unknown) => createHash('sha256').update(canonicalize(event)).digest('hex');

async function chat(job: string, session?: string): Promise<void> {
  const res = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${ADMIN}`,
      'content-type': 'application/json',
      'x-flowloom-job': job,
      ...(session ? { 'x-flowloom-session': session } : {}),
    },
    body: JSON.stringify({ model: 'flowloom-local', messages: [{ role: 'user', content: `from ${job}` }] }),
  });
  await res.arrayBuffer();
  expect(res.status, job).toBe(200);
}

/** Bytes of an event as a Kafka record (data the value, attributes headers, subject the key), framing aside. */
function recordBytes(event: CloudEvent): number {
  const attributes = [
    event.specversion,
    event.id,
    event.source,
    event.type,
    event.time,
    event.datacontenttype,
  ];
  return (
    Buffer.byteLength(JSON.stringify(event.data)) +
    2 * Buffer.byteLength(event.subject ?? '') +
    attributes.reduce((n, a) => n + Buffer.byteLength(String(a)) + 16, 0)
  );
}

interface Parked {
  id: string;
  type: string;
  sha256: string;
  sizeBytes: number;
  subject?: string;
}

/** `flowloom outbox parked ...` through the gateway's URL as the bootstrap admin; its exit code and JSON. */
async function outboxCli(...args: string[]) {
  const result = await runCli(
    ['outbox', 'parked', ...args, '--json'],
    cleanEnv({ FLOWLOOM_URL: gateway.url, FLOWLOOM_API_KEY: ADMIN }),
  );
  expect([0, 1], result.stderr).toContain(result.code);
  return { code: result.code, body: JSON.parse(result.stdout) as Record<string, unknown> };
}

/** The redrives in the ledger, recorded by `source`, that published `eventId`. */
async function redrivesOf(source: string, eventId: string): Promise<Entry[]> {
  return (await ledger(`type=${OUTBOX_EVENT_REDRIVEN}`)).filter((e) => {
    const published = e.event?.data.published;
    return e.source === source && Array.isArray(published) && published.includes(eventId);
  });
}

/** The stand-ins in the ledger that describe `eventId`. */
async function standInsOf(eventId: string): Promise<Entry[]> {
  return (await ledger(`type=${OUTBOX_EVENT_PARKED}`)).filter((e) => e.event?.data.eventId === eventId);
}

describe('outbox parking across serve gateway|policy|audit', { timeout: 180_000 }, () => {
  it('when a request event is too large for its topic, then the ledger holds its stand-in and the later events, and after the limit is raised a redrive puts it there once', async () => {
    // What a request event weighs on this build, from one in the ledger: the limit goes between it
    // and the same event with the longest job and session tags (200 characters each).
    await chat('baseline');
    const [baseline] = await until('the baseline request event in the ledger', async () => {
      const found = await ledger(`type=${GATEWAY_REQUEST_COMPLETED}&job=baseline`);
      return found.length > 0 ? found : undefined;
    });
    const small = baseline!.event!;
    const job = `big-${'j'.repeat(196)}`;
    const session = 's'.repeat(200);
    const large = {
      ...small,
      subject: small.subject?.replace('baseline', job),
      data: { ...small.data, job, session },
    };
    expect(large.subject).toContain(job);
    const [smallBytes, largeBytes] = [recordBytes(small), recordBytes(large)];
    expect(largeBytes - smallBytes).toBeGreaterThan(600);
    // A record batch of one adds about 70 bytes of framing to the record.
    const limit = Math.round((smallBytes + largeBytes) / 2) + 70;
    await kafka!.setLimit('gateway.request', limit);
    // The broker applies a topic's new limit shortly after the change: wait until it refuses.
    const probe = createEvent('dev.flowloom.gateway.request.probe.v1', 'e2e/probe', {
      pad: 'p'.repeat(limit),
    });
    await until('the topic to refuse large records', async () =>
      kafka!.bus.publish([probe]).then(
        () => undefined,
        (error: unknown) => {
          if (isEventsRefused(error)) return true;
          throw error;
        },
      ),
    );

    await chat(job, session);
    for (const later of ['after-1', 'after-2', 'after-3']) await chat(later);

    const [parked] = await until('the large request event parked', async () => {
      const listed = await outboxCli();
      const data = listed.body.data as Parked[];
      return data.length > 0 ? data : undefined;
    });
    expect(parked).toMatchObject({ type: GATEWAY_REQUEST_COMPLETED, subject: large.subject });
    // Its stand-in is in the ledger, from the gateway, with its id and hash; the events after it too.
    const [standIn] = await until('its stand-in in the ledger', async () => {
      const found = await standInsOf(parked!.id);
      return found.length > 0 ? found : undefined;
    });
    // From the service whose relay met the refusal: the gateway's outbox table is also relayed by the
    // audit and policy services (their authentication events go in it), whichever holds the lock.
    expect(['flowloom/gateway', 'flowloom/audit', 'flowloom/policy']).toContain(standIn!.source);
    expect(standIn!.event!.data).toMatchObject({
      eventId: parked!.id,
      eventType: GATEWAY_REQUEST_COMPLETED,
      sha256: parked!.sha256,
      sizeBytes: parked!.sizeBytes,
      reason: expect.stringMatching(/TOO_LARGE/),
    });
    for (const later of ['after-1', 'after-2', 'after-3'])
      await until(`the request event of ${later} in the ledger`, async () =>
        (await ledger(`type=${GATEWAY_REQUEST_COMPLETED}&job=${later}`)).length === 1 ? true : undefined,
      );
    expect(await ledgerEntry(parked!.id)).toBeUndefined();
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toContain(`flowloom_outbox_parked_total{type="${GATEWAY_REQUEST_COMPLETED}"} 1`);
    expect(metrics).toContain('flowloom_outbox_parked_events 1');

    await kafka!.raiseLimit('gateway.request');
    // Until the broker applies the new limit a redrive parks it again (exit 1, a new stand-in).
    await until('a redrive that publishes it', async () => {
      const redriven = await outboxCli('--redrive', '--id', parked!.id);
      return redriven.code === 0 ? redriven : undefined;
    });
    const entry = await until('the parked event in the ledger', () => ledgerEntry(parked!.id));
    // The ledger holds the very event its stand-in described, byte for byte, and only once.
    expect(sha256(entry.event)).toBe(parked!.sha256);
    expect((await ledger(`type=${GATEWAY_REQUEST_COMPLETED}&job=${job}`)).map((e) => e.eventId)).toEqual([
      parked!.id,
    ]);
    const redrives = await until('the redrive on the trail', async () => {
      const found = await redrivesOf('flowloom/gateway', parked!.id);
      return found.length > 0 ? found : undefined;
    });
    expect(redrives[0]!.event!.data).toMatchObject({
      actor: expect.stringMatching(/^key\//),
      requested: [parked!.id],
    });
    expect((await outboxCli()).body.total).toBe(0);
  });

  it('when a policy version is too large for its topic, then the policy service parks it with a stand-in, and flowloom outbox parked --service policy redrives it into the ledger once', async () => {
    // The bootstrap key may not push policies: a personal admin key does.
    const { key } = await adminCall<{ key: string }>(gateway.url, ADMIN, 'POST', '/api/v1/keys', {
      name: 'alice',
      owner: 'alice',
      role: 'admin',
    });
    // Descriptions are at most 2,000 characters: a policy is large by having many rules.
    const push = (name: string, rules: number) =>
      adminCall<{ version: string }>(gateway.url, key, 'POST', '/api/v1/policies', {
        source: `name: ${name}\nrules:\n${Array.from(
          { length: rules },
          (_, i) =>
            `  - id: r${i}\n    description: ${'d'.repeat(1500)}\n    condition: request.job == "never-${i}"\n    action: block\n`,
        ).join('')}`,
        message: 'e2e parking',
      });
    await push('huge-guard', Math.ceil((2 * POLICY_TOPIC_LIMIT) / 1500));
    await push('small-guard', 1);

    const [parked] = await until('the large policy version parked', async () => {
      const data = (await outboxCli('--service', 'policy')).body.data as Parked[];
      return data.length > 0 ? data : undefined;
    });
    expect(parked).toMatchObject({ type: POLICY_VERSION_PUSHED, subject: 'policy/huge-guard' });
    const [standIn] = await until('its stand-in in the ledger', async () => {
      const found = await standInsOf(parked!.id);
      return found.length > 0 ? found : undefined;
    });
    expect(standIn!.source).toBe('flowloom/policy');
    expect(standIn!.event!.data).toMatchObject({ eventId: parked!.id, sha256: parked!.sha256 });
    // The version pushed after it is not held up.
    await until('the small version in the ledger', async () =>
      (await ledger(`type=${POLICY_VERSION_PUSHED}`)).some((e) => e.event?.subject === 'policy/small-guard')
        ? true
        : undefined,
    );
    expect(await ledgerEntry(parked!.id)).toBeUndefined();
    expect(await (await fetch(`${policy.url}/metrics`)).text()).toContain(
      `flowloom_policy_outbox_parked_total{type="${POLICY_VERSION_PUSHED}"} 1`,
    );

    await kafka!.raiseLimit('policy.version');
    await until('a redrive that publishes it', async () => {
      const redriven = await outboxCli('--service', 'policy', '--redrive');
      return redriven.code === 0 && (redriven.body.published as string[]).includes(parked!.id)
        ? true
        : undefined;
    });
    const entry = await until('the parked version in the ledger', () => ledgerEntry(parked!.id));
    expect(sha256(entry.event)).toBe(parked!.sha256);
    expect(
      (await ledger(`type=${POLICY_VERSION_PUSHED}`)).filter((e) => e.eventId === parked!.id),
    ).toHaveLength(1);
    await until('the redrive on the trail', async () =>
      (await redrivesOf('flowloom/policy', parked!.id)).length > 0 ? true : undefined,
    );
    expect((await outboxCli('--service', 'policy')).body.total).toBe(0);
  });
});
