import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPlatform, killUp, PRINTED_KEY, runCli, startEmbeddedPlatform } from './cli-support.js';

// `flowloom keys show`, `rotate` (with and without `--grace-seconds`) and `revoke` as an operator runs
// them against an embedded `flowloom up`; each key's effect is checked on the model API (GET /v1/models).

const ADMIN = 'flk_e2e-keys-cli-admin-0123456789abcdefgh';

/** The fields of `flowloom keys ... --json` read here. */
interface KeyView {
  id: string;
  hint: string;
  key?: string;
  expiresAt: string | null;
  revokedAt: string | null;
  rotatedFrom?: string | null;
}

let dir: string;
let platform: EmbeddedPlatform | undefined;

const keys = (...args: string[]) => runCli(['keys', ...args], platform!.env);

async function keysJson(...args: string[]): Promise<KeyView> {
  const result = await keys(...args, '--json');
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as KeyView;
}

/** The status the model API answers a key with. */
async function statusOf(secret: string): Promise<number> {
  const response = await fetch(`${platform!.base}/v1/models`, {
    headers: { authorization: `Bearer ${secret}` },
  });
  await response.arrayBuffer();
  return response.status;
}

const created = (name: string) =>
  keysJson('create', '--name', name, '--owner', 'ops', '--project', 'keys-cli');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-e2e-keys-cli-'));
  platform = await startEmbeddedPlatform(join(dir, 'data'), ADMIN);
}, 120_000);

afterAll(async () => {
  await killUp(platform?.up);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('flowloom keys show, rotate and revoke (embedded flowloom up)', () => {
  it('when a key is shown, then its attributes are printed and never its secret', async () => {
    const key = await created('shown');
    const human = await keys('show', key.id);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(key.id);
    expect(human.stdout).toContain('shown');
    expect(human.stdout).toContain('owner=ops');
    expect(human.stdout).toContain('project=keys-cli');
    expect(human.stdout).toContain('role=member');
    expect(human.stdout).toContain(key.hint);
    expect(human.stdout).not.toContain(key.key!);

    const json = await keysJson('show', key.id);
    expect(json).toMatchObject({
      id: key.id,
      name: 'shown',
      owner: 'ops',
      project: 'keys-cli',
      revokedAt: null,
    });
    expect(json.key).toBeUndefined();
    expect(JSON.stringify(json)).not.toContain(key.key!);
  });

  it('when a key is rotated with --grace-seconds, then the new secret works at once and the old one until the grace period ends', async () => {
    const old = await created('rotated-grace');
    const before = Date.now();
    const rotated = await keysJson('rotate', old.id, '--grace-seconds', '3');
    expect(rotated.id).not.toBe(old.id);
    expect(rotated.rotatedFrom).toBe(old.id);
    expect(rotated).toMatchObject({ name: 'rotated-grace', owner: 'ops', project: 'keys-cli' });
    expect(rotated.key).toMatch(/^flk_/);
    expect(rotated.key).not.toBe(old.key);
    expect(await statusOf(rotated.key!)).toBe(200);
    expect(await statusOf(old.key!)).toBe(200);

    // The old key now expires at the end of the grace period.
    const shownOld = await keysJson('show', old.id);
    const expires = Date.parse(shownOld.expiresAt ?? '');
    expect(expires).toBeGreaterThanOrEqual(before + 2_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 3_000);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expires - Date.now()) + 200));
    expect(await statusOf(old.key!)).toBe(401);
    expect(await statusOf(rotated.key!)).toBe(200);
  });

  it('when a key is rotated with --grace-seconds 0, then the old secret stops at once; without --json the new secret is printed once', async () => {
    const old = await created('rotated-now');
    const result = await keys('rotate', old.id, '--grace-seconds', '0');
    expect(result.code, result.stderr).toBe(0);
    const secret = PRINTED_KEY.exec(result.stdout)?.[1];
    expect(secret, result.stdout).toBeDefined();
    expect(result.stdout).toContain('shown only once');
    expect(await statusOf(secret!)).toBe(200);
    expect(await statusOf(old.key!)).toBe(401);
  });

  it('when a key is rotated without --grace-seconds, then the old one keeps working for the default hour', async () => {
    const old = await created('rotated-default');
    const before = Date.now();
    await keysJson('rotate', old.id);
    const expires = Date.parse((await keysJson('show', old.id)).expiresAt ?? '');
    expect(expires).toBeGreaterThanOrEqual(before + 3_590_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 3_600_000);
    expect(await statusOf(old.key!)).toBe(200);
  });

  it('when a key is revoked, then it is refused at once, shown as revoked, and listed only with --all', async () => {
    const key = await created('revoked');
    expect(await statusOf(key.key!)).toBe(200);
    const revoked = await keys('revoke', key.id);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(/revoked \d{4}-\d\d-\d\dT/);
    expect(await statusOf(key.key!)).toBe(401);
    expect((await keysJson('show', key.id)).revokedAt).not.toBeNull();

    const listed = await keysJson('list');
    const all = await keysJson('list', '--all');
    const ids = (views: unknown) => (views as KeyView[]).map((k) => k.id);
    expect(ids(listed)).not.toContain(key.id);
    expect(ids(all)).toContain(key.id);

    // A revoked key cannot be rotated back to life.
    const again = await keys('rotate', key.id);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('revoked');
  });

  it('when show, revoke or rotate get a bad id or option, then they exit non-zero saying what is wrong and change nothing', async () => {
    const key = await created('untouched');
    const noId = await keys('revoke');
    expect(noId.code).toBe(2);
    expect(noId.stderr).toContain('needs a key id');
    const badGrace = await keys('rotate', key.id, '--grace-seconds', 'soon');
    expect(badGrace.code).toBe(2);
    expect(badGrace.stderr).toContain('--grace-seconds must be a whole number');
    const unknown = await keys('show', '01890000-0000-7000-8000-000000000000');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('No API key with id 01890000-0000-7000-8000-000000000000');
    const shown = await keysJson('show', key.id);
    expect(shown).toMatchObject({ revokedAt: null, expiresAt: null });
    expect(await statusOf(key.key!)).toBe(200);
  });
});
