import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from './index.js';

const fakes: FakeProvider[] = [];

async function openaiFake(options: { maxRecorded?: number } = {}): Promise<FakeProvider> {
  const fake = await startFakeProvider({ kind: 'openai', ...options });
  fakes.push(fake);
  return fake;
}

function chat(
  fake: FakeProvider,
  body: Record<string, unknown> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${fake.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: 'Bearer sk-any', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }], ...body }),
    ...(signal !== undefined ? { signal } : {}),
  });
}

/** Reads a response body, noting when each piece arrived. */
async function readTimed(response: Response): Promise<{ text: string; arrivals: number[] }> {
  const reader = response.body?.getReader();
  if (reader === undefined) throw new Error('no body');
  const decoder = new TextDecoder();
  const arrivals: number[] = [];
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    arrivals.push(performance.now());
    text += decoder.decode(value, { stream: true });
  }
  return { text, arrivals };
}

afterEach(async () => {
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

describe('scripting the fake upstreams', () => {
  it('when behaviours are scripted, then they are used once each, in order, before the default', async () => {
    const fake = await openaiFake();
    fake.setDefault({ kind: 'reply', text: 'default answer' });
    fake.script({ kind: 'reply', text: 'first' }, { kind: 'error', status: 500 });

    const first = (await (await chat(fake)).json()) as { choices: { message: { content: string } }[] };
    const second = await chat(fake);
    const third = (await (await chat(fake)).json()) as { choices: { message: { content: string } }[] };

    expect(first.choices[0]?.message.content).toBe('first');
    expect(second.status).toBe(500);
    expect(third.choices[0]?.message.content).toBe('default answer');
    expect(fake.requests.map((request) => request.behaviour)).toEqual(['reply', 'error', 'reply']);

    fake.reset();
    expect(fake.requests).toEqual([]);
    const afterReset = (await (await chat(fake)).json()) as { choices: { message: { content: string } }[] };
    expect(afterReset.choices[0]?.message.content).toContain('hello');
  });

  it('when auth fails, then the scripted behaviour is kept for the next valid call', async () => {
    const fake = await startFakeProvider({ kind: 'openai', apiKey: 'sk-right' });
    fakes.push(fake);
    fake.script({ kind: 'reply', text: 'kept' });
    const denied = await chat(fake);
    expect(denied.status).toBe(401);
    const allowed = await fetch(`${fake.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-right' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(
      ((await allowed.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content,
    ).toBe('kept');
    expect(fake.requests[0]?.behaviour).toBeUndefined();
  });

  it('when more requests arrive than are kept, then only the last N are recorded while stats count all', async () => {
    const fake = await openaiFake({ maxRecorded: 3 });
    for (let i = 0; i < 5; i++)
      await (await chat(fake, { messages: [{ role: 'user', content: `m${i}` }] })).text();
    expect(fake.requests.map((request) => request.seq)).toEqual([3, 4, 5]);
    expect(fake.stats.requests).toBe(5);

    const silent = await openaiFake({ maxRecorded: 0 });
    await (await chat(silent)).text();
    expect(silent.requests).toEqual([]);
    expect(silent.stats.requests).toBe(1);
  });

  it('when a delay before headers is scripted, then the response starts no sooner', async () => {
    const fake = await openaiFake();
    fake.script({ kind: 'reply', delayMs: 150 });
    const started = performance.now();
    const response = await chat(fake);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(response.status).toBe(200);
  });

  it('when a delay between chunks is scripted, then frames arrive spread over time', async () => {
    const fake = await openaiFake();
    fake.script({ kind: 'reply', chunks: ['a', 'b', 'c', 'd'], chunkDelayMs: 60 });
    const { text, arrivals } = await readTimed(await chat(fake, { stream: true }));
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(arrivals.length).toBeGreaterThanOrEqual(4);
    expect((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)).toBeGreaterThanOrEqual(200);
  });

  it('when no delay is scripted, then the whole stream is written at once', async () => {
    const fake = await openaiFake();
    const { text } = await readTimed(await chat(fake, { stream: true }));
    const frames = text.split('\n\n').filter((frame) => frame.length > 0);
    expect(frames.at(-1)).toBe('data: [DONE]');
    expect(frames.length).toBeGreaterThan(3);
  });

  it('when a disconnect without chunks is scripted, then the client gets a connection error and no response', async () => {
    const fake = await openaiFake();
    fake.script({ kind: 'disconnect' });
    await expect(chat(fake)).rejects.toThrow();
    expect(fake.requests[0]?.status).toBeUndefined();
    expect(fake.requests[0]?.aborted).toBe(false);
  });

  it('when a non-streamed answer is cut, then the body is truncated against its content-length', async () => {
    const fake = await openaiFake();
    fake.script({ kind: 'disconnect', afterChunks: 0 });
    const response = await chat(fake);
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
  });

  it('when garbage is scripted for a plain call, then a 200 JSON-labelled body is not JSON', async () => {
    const fake = await openaiFake();
    fake.script({ kind: 'garbage' });
    const response = await chat(fake);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    const text = await response.text();
    expect(() => JSON.parse(text)).toThrow();
  });

  it('when a request hangs before headers and the client gives up, then the abort is recorded', async () => {
    const fake = await openaiFake();
    fake.script({ kind: 'hang' });
    const controller = new AbortController();
    const pending = chat(fake, {}, controller.signal).catch((error: unknown) => error);
    await fake.waitFor((request) => request.behaviour === 'hang');
    expect(fake.stats.active).toBe(1);
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    const aborted = await fake.waitForAbort();
    expect(aborted.status).toBeUndefined();
    expect(fake.stats).toMatchObject({ aborted: 1, active: 0 });
  });

  it('when the fake is closed with requests still hanging, then close resolves and the clients see errors', async () => {
    const fake = await startFakeProvider({ kind: 'anthropic' });
    fake.setDefault({ kind: 'hang' });
    const hanging = [1, 2, 3].map(() =>
      fetch(`${fake.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': 'k', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify({
          model: 'claude-sonnet-4-6',
          max_tokens: 5,
          messages: [{ role: 'user', content: 'x' }],
        }),
      }).catch((error: unknown) => error),
    );
    await fake.waitFor((request) => request.seq === 3);
    await fake.close();
    for (const outcome of await Promise.all(hanging)) expect(outcome).toBeInstanceOf(Error);
  });

  it('when many requests arrive at once over keep-alive connections, then every one is answered', async () => {
    const fake = await openaiFake({ maxRecorded: 10 });
    const agentless = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        chat(fake, { stream: i % 2 === 0, messages: [{ role: 'user', content: `load ${i}` }] }).then(
          async (response) => ({
            status: response.status,
            text: await response.text(),
          }),
        ),
      ),
    );
    expect(agentless.every((result) => result.status === 200)).toBe(true);
    expect(agentless.filter((result) => result.text.endsWith('data: [DONE]\n\n'))).toHaveLength(200);
    expect(fake.stats.requests).toBe(400);
    expect(fake.requests).toHaveLength(10);
  });

  it('when a body is sent in pieces with an unusual path, then the fake answers in the provider format', async () => {
    const fake = await openaiFake();
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${fake.url}/v1/completions-unknown`, { method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('{"a":');
      req.end('1}');
    });
    expect(status).toBe(404);
    expect(fake.requests[0]?.body).toEqual({ a: 1 });
  });
});
