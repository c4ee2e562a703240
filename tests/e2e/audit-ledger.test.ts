import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditGrpcClient } from '@flowloom/audit';
import {
  openCheckpoint,
  parseVerifierKey,
  prunedLeafHash,
  verifyConsistency,
  verifyInclusion,
} from '@flowloom/ledger';
import * as grpc from '@grpc/grpc-js';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanEnv,
  embeddedUpEnv,
  eventually,
  killUp,
  type Running,
  runCli,
  startUp,
  stopUp,
  waitForOutput,
} from './cli-support.js';

// The audit trail end to end in the composed platform: `flowloom up` as a child process, requests
// through the gateway with the official SDK, the ledger read back through the admin API and gRPC,
// and the CLI verifying and exporting as an auditor would.

const ADMIN = 'flk_e2e-audit-admin-key-0123456789abcdefgh';
const COMPLETED = 'dev.flowloom.gateway.request.completed.v1';
const START_MS = 90_000;

let dir: string;
let env: NodeJS.ProcessEnv;
let running: Running | undefined;
let url: string;
let grpcAddress: string;
const requestIds: string[] = [];
const apolloIds: string[] = [];

async function admin<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

interface EntryJson {
  index: number;
  eventId: string;
  type: string;
  project: string | null;
  actor: string | null;
  event: { data: Record<string, unknown> } | null;
}

async function completedEntries(): Promise<EntryJson[]> {
  const out: EntryJson[] = [];
  let cursor: string | null = null;
  do {
    const page: { data: EntryJson[]; nextCursor: string | null } = await admin(
      'GET',
      `/api/v1/audit/entries?type=${COMPLETED}&limit=1000&order=asc${cursor ? `&cursor=${cursor}` : ''}`,
    );
    out.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

async function up(): Promise<void> {
  running = startUp(env);
  const match = await waitForOutput(running, /Audit trail: .*gRPC (\S+:\d+)/, START_MS);
  grpcAddress = match[1] ?? '';
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-audit-e2e-'));
  ({ env, base: url } = await embeddedUpEnv(join(dir, 'data'), ADMIN, {
    FLOWLOOM_AUDIT_CHECKPOINT_DIR: join(dir, 'external'),
  }));
  await up();
}, START_MS + 10_000);

afterAll(async () => {
  await killUp(running);
  rmSync(dir, { recursive: true, force: true });
});

describe('the audit trail of a composed platform (flowloom up)', () => {
  it('when requests go through the gateway, then each lands in the ledger exactly once, with its key change', async () => {
    const apollo = await admin<{ key: string; id: string }>('POST', '/api/v1/keys', {
      name: 'apollo-ci',
      project: 'apollo',
    });
    const plain = await admin<{ key: string; id: string }>('POST', '/api/v1/keys', { name: 'laptop' });
    for (const [n, key] of [apollo.key, apollo.key, plain.key, apollo.key, plain.key, apollo.key].entries()) {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 15_000 });
      const messages = [{ role: 'user' as const, content: `hello ${n}` }];
      let response: Response;
      if (n % 2 === 1) {
        const streamed = await client.chat.completions
          .create({ model: 'flowloom-local', messages, stream: true })
          .withResponse();
        for await (const _chunk of streamed.data) {
          // drain: the event is recorded after the last byte
        }
        response = streamed.response;
      } else {
        response = (
          await client.chat.completions.create({ model: 'flowloom-local', messages }).withResponse()
        ).response;
      }
      const id = response.headers.get('x-request-id') ?? '';
      requestIds.push(id);
      if (key === apollo.key) apolloIds.push(id);
    }
    const entries = await eventually(async () => {
      const all = await completedEntries();
      const seen = new Set(all.map((e) => e.event?.data['requestId']));
      return requestIds.every((id) => seen.has(id)) ? all : undefined;
    });
    for (const id of requestIds) {
      expect(entries.filter((e) => e.event?.data['requestId'] === id)).toHaveLength(1);
    }
    const byRequest = new Map(entries.map((e) => [e.event?.data['requestId'], e]));
    for (const id of apolloIds) expect(byRequest.get(id)?.project).toBe('apollo');
    expect(new Set(entries.map((e) => e.eventId)).size).toBe(entries.length);
    const keyChanges = await admin<{ data: EntryJson[] }>(
      'GET',
      '/api/v1/audit/entries?type=dev.flowloom.gateway.key.changed.v1&limit=100',
    );
    const changed = keyChanges.data.map((e) => e.event?.data['keyId']);
    expect(changed).toEqual(expect.arrayContaining([apollo.id, plain.id]));
    const text = await admin<{ data: EntryJson[] }>(
      'GET',
      `/api/v1/audit/entries?q=${encodeURIComponent(requestIds[2] ?? '')}`,
    );
    expect(text.data.map((e) => e.event?.data['requestId'])).toContain(requestIds[2]);
  }, 60_000);

  it('when a wrong key is refused and an admin logs in, then both reach the ledger and are found by type, without the secret', async () => {
    const wrong = 'flk_e2e-wrong-key-0123456789abcdefghijklmn';
    const refused = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${wrong}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'flowloom-local', messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(refused.status).toBe(401);
    const adminRefused = await fetch(`${url}/api/v1/keys`, { headers: { authorization: `Bearer ${wrong}` } });
    expect(adminRefused.status).toBe(401);
    const ids = [refused.headers.get('x-request-id'), adminRefused.headers.get('x-request-id')];
    await admin('GET', '/api/v1/keys');
    const failed = await eventually(async () => {
      const page = await admin<{ data: EntryJson[] }>(
        'GET',
        '/api/v1/audit/entries?type=dev.flowloom.gateway.auth.failed.v1&limit=100',
      );
      const found = page.data.filter((e) => ids.includes(String(e.event?.data['requestId'])));
      return found.length === 2 ? found : undefined;
    });
    expect(failed.map((e) => e.event?.data['surface']).sort()).toEqual(['admin', 'model']);
    for (const e of failed) {
      expect(e.event?.data).toMatchObject({
        reason: 'invalid_api_key',
        keyHint: 'flk_e2e-…',
        sourceIp: '127.0.0.1',
      });
      expect(JSON.stringify(e)).not.toContain(wrong.slice(8));
    }
    const logins = await eventually(async () => {
      const page = await admin<{ data: EntryJson[] }>(
        'GET',
        '/api/v1/audit/entries?type=dev.flowloom.gateway.auth.succeeded.v1&limit=100',
      );
      return page.data.length > 0 ? page.data : undefined;
    });
    // The admin called the admin API many times above: one login per key within the window.
    expect(logins).toHaveLength(1);
    expect(logins[0]?.event?.data).toMatchObject({ surface: 'admin', keyHint: `${ADMIN.slice(0, 8)}…` });
    expect(JSON.stringify(logins)).not.toContain(ADMIN.slice(8));
  }, 60_000);

  it('when flowloom audit verify runs against the live platform, then it recomputes everything and passes', async () => {
    const result = await runCli(['audit', 'verify'], { ...env, FLOWLOOM_URL: url, FLOWLOOM_API_KEY: ADMIN });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^OK: \d+ entries/);
    expect(result.stderr).toMatch(/entries: \d+ \/ \d+ \(100%\)/);
    const recorded = await admin<{ data: EntryJson[] }>(
      'GET',
      '/api/v1/audit/entries?type=dev.flowloom.audit.verification.completed.v1',
    );
    expect(recorded.data[0]?.actor).toMatch(/bootstrap-admin|admin/);
  }, 60_000);

  it('when the log is exported, then the bundle verifies offline and any edit, deletion or reordering is named', async () => {
    const cliEnv = { ...env, FLOWLOOM_URL: url, FLOWLOOM_API_KEY: ADMIN };
    const bundle = join(dir, 'bundle');
    const exported = await runCli(['audit', 'export', '--out', bundle], cliEnv);
    expect(exported.code, exported.stdout + exported.stderr).toBe(0);
    for (const file of ['entries.jsonl', 'checkpoint', 'proofs.json', 'public-key', 'manifest.json']) {
      expect(existsSync(join(bundle, file))).toBe(true);
    }
    const keyFile = join(dir, 'trusted-public-key');
    writeFileSync(keyFile, await (await fetch(`${url}/api/v1/audit/public-key`)).text());
    const offline = await runCli(['audit', 'verify', bundle, '--key', keyFile], cleanEnv({}));
    expect(offline.code, offline.stdout).toBe(0);
    expect(offline.stdout).toMatch(/^OK: /);

    const lines = readFileSync(join(bundle, 'entries.jsonl'), 'utf8').trimEnd().split('\n');
    const target = lines.findIndex((l) => l.includes(requestIds[3] ?? '~'));
    const edits: Array<[string, string[], RegExp]> = [
      [
        'edited',
        lines.map((l, i) => (i === target ? l.replace('"stream":', '"streamed":') : l)),
        new RegExp(`First bad entry: ${target} \\(changed\\)`),
      ],
      [
        'deleted',
        lines.filter((_, i) => i !== target),
        new RegExp(`First bad entry: ${target} \\(deleted\\)`),
      ],
      [
        'reordered',
        lines.map((l, i) =>
          i === target ? (lines[target + 1] ?? '') : i === target + 1 ? (lines[target] ?? '') : l,
        ),
        new RegExp(`First bad entry: ${target} \\(reordered\\)`),
      ],
    ];
    for (const [name, edited, expected] of edits) {
      const copy = join(dir, `bundle-${name}`);
      cpSync(bundle, copy, { recursive: true });
      writeFileSync(join(copy, 'entries.jsonl'), `${edited.join('\n')}\n`);
      const result = await runCli(['audit', 'verify', copy, '--key', keyFile], cleanEnv({}));
      expect(result.code, `${name}: ${result.stdout}`).toBe(1);
      expect(result.stdout, name).toMatch(expected);
    }
  }, 90_000);

  it('when the export is filtered by project, then only that project is readable and the bundle still verifies', async () => {
    const cliEnv = { ...env, FLOWLOOM_URL: url, FLOWLOOM_API_KEY: ADMIN };
    const bundle = join(dir, 'bundle-apollo');
    const exported = await runCli(['audit', 'export', '--out', bundle, '--project', 'apollo'], cliEnv);
    expect(exported.code, exported.stdout + exported.stderr).toBe(0);
    const lines = readFileSync(join(bundle, 'entries.jsonl'), 'utf8').trimEnd().split('\n');
    const full = lines.filter((l) => prunedLeafHash(Buffer.from(l)) === undefined).map((l) => JSON.parse(l));
    expect(full.length).toBeGreaterThanOrEqual(apolloIds.length);
    for (const entry of full) expect(entry.data.project).toBe('apollo');
    const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8'));
    expect(manifest.filter).toEqual({ project: 'apollo' });
    expect(manifest.entries.exported).toBe(full.length);
    expect(manifest.entries.withheld).toBe(lines.length - full.length);
    expect(manifest.inclusionProofs).toBe(full.length);
    const offline = await runCli(['audit', 'verify', bundle], cleanEnv({}));
    expect(offline.code, offline.stdout).toBe(0);
  }, 60_000);

  it('when flowloom audit query filters by project, type and text, then it lists exactly the matching entries', async () => {
    const cliEnv = { ...env, FLOWLOOM_URL: url, FLOWLOOM_API_KEY: ADMIN };
    const completed = 'dev.flowloom.gateway.request.completed.v1';
    const byProject = await runCli(
      ['audit', 'query', '--project', 'apollo', '--type', completed, '--limit', '100', '--json'],
      cliEnv,
    );
    expect(byProject.code, byProject.stdout + byProject.stderr).toBe(0);
    const page = JSON.parse(byProject.stdout) as { data: EntryJson[] };
    expect(page.data.map((e) => e.event?.data['requestId']).sort()).toEqual([...apolloIds].sort());

    const byText = await runCli(['audit', 'query', '--text', requestIds[2] ?? '~'], cliEnv);
    expect(byText.code, byText.stdout + byText.stderr).toBe(0);
    // One line per entry: the request's own completion is among them, the other requests' are not.
    const lines = byText.stdout.trim().split('\n');
    expect(lines.filter((l) => l.includes(completed))).toHaveLength(1);
    const all = await runCli(['audit', 'query', '--type', completed, '--limit', '100'], cliEnv);
    expect(all.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(requestIds.length);
  }, 60_000);

  it('when a gRPC client asks flowloom.audit.v1.Audit, then proofs verify against the signed checkpoint and auth is required', async () => {
    const Audit = auditGrpcClient();
    const client = new Audit(grpcAddress, grpc.credentials.createInsecure());
    const call = <T>(method: string, request: unknown, metadata = new grpc.Metadata()): Promise<T> =>
      new Promise((resolve, reject) => {
        const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method];
        fn?.call(client, request, metadata, (error: grpc.ServiceError | null, response: T) =>
          error ? reject(error) : resolve(response),
        );
      });
    const authed = new grpc.Metadata();
    authed.set('authorization', `Bearer ${ADMIN}`);
    try {
      const keys = await call<{ origin: string; verifierKeys: string[] }>('getPublicKeys', {});
      const entries = await call<{ entries: Array<{ eventId: string; entry: string }> }>(
        'queryEntries',
        { type: COMPLETED, limit: 5 },
        authed,
      );
      const eventId = entries.entries[0]?.eventId ?? '';
      const proof = await call<{
        index: number;
        treeSize: number;
        leafHash: Buffer;
        proof: Buffer[];
        checkpoint: string;
      }>('getInclusionProof', { eventId }, authed);
      const { checkpoint } = openCheckpoint(
        proof.checkpoint,
        keys.verifierKeys.map((k) => parseVerifierKey(k)),
        keys.origin,
      );
      expect(checkpoint.size).toBe(proof.treeSize);
      expect(
        verifyInclusion(proof.index, proof.treeSize, proof.leafHash, proof.proof, checkpoint.rootHash),
      ).toBe(true);
      await expect(call('queryEntries', { limit: 1 })).rejects.toMatchObject({
        code: grpc.status.UNAUTHENTICATED,
      });
      await expect(call('getInclusionProof', { index: 10_000_000 }, authed)).rejects.toMatchObject({
        code: grpc.status.NOT_FOUND,
      });
    } finally {
      client.close();
    }
  }, 30_000);

  it('when the platform restarts, then the stopped ledger verifies from its folder and the restarted one continues consistently', async () => {
    const before = await admin<{ treeSize: number; rootHash: string }>(
      'POST',
      '/api/v1/audit/checkpoints',
      {},
    );
    expect(await stopUp(running as Running)).toBe(0);
    const external = join(dir, 'external');
    expect(readdirSync(external).filter((f) => f.endsWith('.checkpoint')).length).toBeGreaterThan(1);
    const offline = await runCli(
      ['audit', 'verify', '--data-dir', join(dir, 'data'), '--checkpoints', external],
      cleanEnv({}),
    );
    expect(offline.code, offline.stdout + offline.stderr).toBe(0);
    expect(offline.stdout).toMatch(/external one\(s\)/);
    const report = await runCli(
      ['report', '--standard', 'part11', '--data-dir', join(dir, 'data'), '--out', join(dir, 'report')],
      cleanEnv({}),
    );
    expect(report.code, report.stdout + report.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(dir, 'report', 'report.json'), 'utf8'));
    expect(json.requirements.map((r: { reference: string }) => r.reference)).toContain('21 CFR §11.10(e)');
    expect(readFileSync(join(dir, 'report', 'report.html'), 'utf8')).toContain('<h1>21 CFR Part 11');

    await up();
    const key = await admin<{ key: string }>('POST', '/api/v1/keys', { name: 'after-restart' });
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key.key, maxRetries: 0 });
    const { response } = await client.chat.completions
      .create({ model: 'flowloom-local', messages: [{ role: 'user', content: 'again' }] })
      .withResponse();
    const id = response.headers.get('x-request-id');
    await eventually(async () =>
      (await completedEntries()).some((e) => e.event?.data['requestId'] === id) ? true : undefined,
    );
    const proof = await admin<{
      from: number;
      to: number;
      fromRoot: string;
      toRoot: string;
      proof: string[];
    }>('GET', `/api/v1/audit/proofs/consistency?from=${before.treeSize}`);
    const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
    expect(proof.fromRoot).toBe(before.rootHash);
    expect(proof.to).toBeGreaterThan(before.treeSize);
    expect(
      verifyConsistency(proof.from, proof.to, proof.proof.map(b), b(before.rootHash), b(proof.toRoot)),
    ).toBe(true);
  }, 180_000);
});
