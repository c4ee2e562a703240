import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PolicyGateway, startPolicyGateway } from './policy-helpers.js';

// A gateway enforcing a policy file has no policy service to fetch a job policy from: it refuses to
// bind one to a key rather than issue a key whose restrictions it could not apply.

let t: PolicyGateway;

beforeAll(async () => {
  t = await startPolicyGateway(
    'name: p\nrules:\n  - id: r\n    condition: request.job == "x"\n    action: block\n',
  );
});
afterAll(async () => {
  await t?.close();
});

describe('job policies on a gateway without the policy service', () => {
  it('when a key is created with a job policy, then it is refused with what to do, and no key is issued', async () => {
    const res = await t.post('/api/v1/keys', { name: 'bound', policy: 'abcdef0123' }, t.adminKey);
    expect(res.status).toBe(400);
    expect(res.text).toContain('no policy service to fetch job policies from');
    const listed = await t.get('/api/v1/keys', t.adminKey);
    expect((listed.body as { data: Array<{ name: string }> }).data.some((k) => k.name === 'bound')).toBe(
      false,
    );
  });

  it('when the policy is not a version id, then the request is refused as invalid', async () => {
    const res = await t.post('/api/v1/keys', { name: 'bound', policy: 'loop-guard' }, t.adminKey);
    expect(res.status).toBe(400);
    expect(res.text).toContain('policy must be a policy version id');
  });
});
