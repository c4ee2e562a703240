import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => t.close());

const ask = { model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] };

describe('keys bound to a job', () => {
  it('when a job key calls without a job header, then its requests are tagged with its job', async () => {
    const { key } = await t.createKey({ job: 'nightly-etl' });
    const res = await t.post('/v1/chat/completions', ask, key);
    expect(res.status).toBe(200);
    const events = await t.events();
    const completed = events.find((e) => e.data.requestId === res.headers.get('x-request-id'));
    expect(completed?.data.job).toBe('nightly-etl');
    expect(completed?.subject).toBe('job/nightly-etl');
  });

  it('when a job key tags another job, then it is refused and nothing is recorded as completed', async () => {
    const { key } = await t.createKey({ job: 'nightly-etl' });
    const res = await t.post('/v1/chat/completions', ask, key, { 'x-flowloom-job': 'someone-else' });
    expect(res.status).toBe(403);
    expect((res.body as { error: { code: string; param: string } }).error).toMatchObject({
      code: 'forbidden',
      param: 'x-flowloom-job',
    });
    expect((await t.post('/v1/chat/completions', ask, key, { 'x-flowloom-job': 'nightly-etl' })).status).toBe(
      200,
    );
  });

  it('when a job key is listed, then its job is shown, and an invalid job is refused at creation', async () => {
    const { id } = await t.createKey({ job: 'batch-7' });
    const shown = await t.get(`/api/v1/keys/${id}`, t.adminKey);
    expect(shown.body).toMatchObject({ job: 'batch-7' });
    const bad = await t.post('/api/v1/keys', { name: 'x', job: 'has spaces' }, t.adminKey);
    expect(bad.status).toBe(400);
  });
});
