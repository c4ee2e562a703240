import { AppError } from '@flowloom/errors';
import { compilePolicy } from '@flowloom/policy-engine';
import { describe, expect, it } from 'vitest';
import type { FetchedPolicyVersion } from '../ports/policy-source.js';
import { JobPolicies } from './job-policies.js';

const document = (action: unknown) => ({
  name: 'job-guard',
  rules: [{ id: 'r', condition: 'request.max_tokens > 10', action }],
});

function stored(action: unknown = 'block'): FetchedPolicyVersion {
  const compiled = compilePolicy(document(action));
  if (!compiled.ok) throw new Error('test policy does not compile');
  return { name: 'job-guard', version: compiled.policy.version, document: compiled.document };
}

describe('JobPolicies', () => {
  it('when many requests need a version at once, then it is fetched once and then served from memory', async () => {
    const version = stored();
    let fetches = 0;
    const jobs = new JobPolicies(async () => {
      fetches++;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return version;
    });
    expect(jobs.cached(version.version)).toBeUndefined();
    const all = await Promise.all(Array.from({ length: 5 }, () => jobs.get(version.version)));
    expect(new Set(all).size).toBe(1);
    expect(fetches).toBe(1);
    expect(jobs.cached(version.version)?.version).toBe(version.version);
    await jobs.get(version.version.slice(0, 10));
    // A prefix is resolved by the policy service; the full id is served from memory.
    await jobs.get(version.version);
    expect(fetches).toBe(2);
  });

  it('when the policy service fails, then the failure is not kept: the next request asks again', async () => {
    const version = stored();
    let up = false;
    const jobs = new JobPolicies(async () => {
      if (!up) throw new Error('connection refused');
      return version;
    });
    await expect(jobs.get(version.version)).rejects.toMatchObject({ code: 'unavailable' });
    up = true;
    await expect(jobs.get(version.version)).resolves.toMatchObject({ version: version.version });
  });

  it('when the version reroutes or its document does not match its id, then it cannot be a job policy', async () => {
    const reroute = stored({ type: 'reroute', model: 'other' });
    await expect(new JobPolicies(async () => reroute).get(reroute.version)).rejects.toThrow(
      /cannot be a job policy:[\s\S]*rules\[0\]\.action/,
    );
    const tampered = { ...stored(), document: document('allow') };
    await expect(new JobPolicies(async () => tampered).get(tampered.version)).rejects.toMatchObject({
      code: 'unavailable',
    });
  });

  it('when there is no policy service, then it says so; an unknown version keeps its not_found', async () => {
    await expect(new JobPolicies(undefined).get('abcdef0')).rejects.toThrow(/no policy service/);
    const jobs = new JobPolicies(async () => {
      throw new AppError('not_found', 'No policy has a version abcdef0.');
    });
    await expect(jobs.get('abcdef0')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('when more versions are used than it keeps, then the least recently used is dropped', async () => {
    const a = stored('block');
    const b = stored('alert');
    const c = stored('stop_job');
    const byId = new Map([a, b, c].map((v) => [v.version, v]));
    const jobs = new JobPolicies(async (id) => byId.get(id)!, 2);
    await jobs.get(a.version);
    await jobs.get(b.version);
    jobs.cached(a.version);
    await jobs.get(c.version);
    expect(jobs.cached(a.version)).toBeDefined();
    expect(jobs.cached(b.version)).toBeUndefined();
    expect(jobs.cached(c.version)).toBeDefined();
  });
});
