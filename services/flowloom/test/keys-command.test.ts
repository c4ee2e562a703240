import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-runner.js';

// `flowloom keys` against a real gateway enforcing a policy whose rule suspends the key of job "abuse".
const POLICY = `
name: guard
rules:
  - id: abuse
    condition: request.job == "abuse"
    action: suspend_key
    message: the job abused the API
`;

let dir: string;
let t: TestGateway;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-keys-cli-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  t = await startTestGateway({ overrides: { policy: { file: join(dir, 'policy.yaml'), mode: 'enforce' } } });
});
afterAll(async () => {
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const flowloom = (...args: string[]) => runCli({ url: t.url, apiKey: t.adminKey }, ...args);

const chat = (key: string, job?: string) =>
  t.post(
    '/v1/chat/completions',
    { model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] },
    key,
    job ? { 'x-flowloom-job': job } : {},
  );

describe('flowloom keys resume', () => {
  it('when a policy suspends a key, then keys show and list say so with the decision, and keys resume lifts it', async () => {
    const created = await flowloom('keys', 'create', '--name', 'agent', '--json');
    expect(created.code, created.err).toBe(0);
    const { id, key, createdBy } = JSON.parse(created.out) as { id: string; key: string; createdBy: string };
    expect(createdBy).toMatch(/^[0-9a-f-]{36}$/);
    const refused = await chat(key, 'abuse');
    expect(refused.status).toBe(403);
    const decision = refused.headers.get('x-flowloom-decision');

    const shown = await flowloom('keys', 'show', id);
    expect(shown.out).toContain('suspended');
    expect(shown.out).toContain(`by decision ${decision}`);
    expect(shown.out).toContain(`resume: flowloom keys resume ${id}`);
    expect(shown.out).toContain(`created by ${createdBy}`);
    expect((await flowloom('keys', 'list')).out).toMatch(new RegExp(`${id} .* suspended`));

    const resumed = await flowloom('keys', 'resume', id);
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.out).toContain('active');
    expect((await chat(key)).status).toBe(200);
    const again = await flowloom('keys', 'resume', id);
    expect(again.code).toBe(1);
    expect(again.err).toContain('is not suspended');
  });

  it('when help is asked, then keys resume is described', async () => {
    const help = await flowloom('keys', 'resume', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('flowloom keys resume ID');
    expect(help.out).toContain('suspend_key');
  });
});
