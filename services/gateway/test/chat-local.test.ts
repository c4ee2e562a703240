import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support.js';

let t: TestGateway;
let key: string;

beforeAll(async () => {
  t = await startTestGateway();
  key = (await t.createKey({ project: 'alpha' })).key;
});
afterAll(async () => t.close());

describe('chat on the local provider', () => {
  it('when a chat completion is answered, then its completed event with usage and cost is on the bus', async () => {
    const res = await t.post(
      '/v1/chat/completions',
      { model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] },
      key,
      {
        'x-flowloom-job': 'job-1',
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-flowloom-deployment')).toBe('local/flowloom-local');
    const requestId = res.headers.get('x-request-id');
    const events = await t.events();
    const completed = events.find(
      (e) => e.type === 'dev.flowloom.gateway.request.completed.v1' && e.data.requestId === requestId,
    );
    expect(completed?.subject).toBe('job/job-1');
    expect(completed?.data).toMatchObject({
      project: 'alpha',
      job: 'job-1',
      model: 'flowloom-local',
      attempts: 1,
      stream: false,
    });
    const body = res.body as { usage: { prompt_tokens: number; completion_tokens: number } };
    expect(completed?.data.usage).toMatchObject({
      inputTokens: body.usage.prompt_tokens,
      outputTokens: body.usage.completion_tokens,
    });
  });

  it('when a streamed answer completes, then its usage is exact and not zero', async () => {
    const res = await t.post(
      '/v1/chat/completions',
      {
        model: 'flowloom-local',
        stream: true,
        stream_options: { include_usage: true },
        messages: [
          {
            role: 'user',
            content: 'flowloom-local: {"reply":"one two three","inputTokens":11,"outputTokens":7}',
          },
        ],
      },
      key,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const frames = res.text.split('\n\n').filter(Boolean);
    expect(frames.at(-1)).toBe('data: [DONE]');
    const usageFrame = JSON.parse(frames.at(-2)!.slice('data: '.length)) as {
      choices: unknown[];
      usage: Record<string, number>;
    };
    expect(usageFrame.choices).toEqual([]);
    expect(usageFrame.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });
    const text = frames
      .slice(0, -2)
      .map((f) => JSON.parse(f.slice(6)) as { choices: Array<{ delta: { content?: string } }> })
      .map((c) => c.choices[0]?.delta.content ?? '')
      .join('');
    expect(text).toBe('one two three');
    const events = await t.events();
    const completed = events.find((e) => e.data.requestId === res.headers.get('x-request-id'));
    expect(completed?.data.usage).toMatchObject({ inputTokens: 11, outputTokens: 7 });
  });

  it('when the local provider is scripted to fail, then the caller gets the mapped error and a failed event is recorded', async () => {
    const res = await t.post(
      '/v1/chat/completions',
      {
        model: 'flowloom-local',
        messages: [{ role: 'user', content: 'flowloom-local: {"error":{"status":503}}' }],
      },
      key,
    );
    expect(res.status).toBe(502);
    expect((res.body as { error: { code: string } }).error.code).toBe('upstream_error');
    const events = await t.events();
    const failed = events.find((e) => e.data.requestId === res.headers.get('x-request-id'));
    expect(failed?.type).toBe('dev.flowloom.gateway.request.failed.v1');
    expect(failed?.data.attempts).toBe(3);
  });
});
