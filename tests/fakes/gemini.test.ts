import { ApiError, FinishReason, GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeProvider, startFakeProvider } from './index.js';

const API_KEY = 'AIza-test-fake-gemini-0001';
const MODEL = 'gemini-2.5-flash';

describe('fake Gemini upstream driven by the official @google/genai SDK', () => {
  let fake: FakeProvider;
  let ai: GoogleGenAI;

  beforeAll(async () => {
    fake = await startFakeProvider({ kind: 'gemini', apiKey: API_KEY });
    ai = new GoogleGenAI({ apiKey: API_KEY, httpOptions: { baseUrl: fake.url } });
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.reset();
  });

  it('when content is generated, then the SDK reads text, finish reason and usage with cached tokens', async () => {
    fake.script({ kind: 'reply', text: 'Paris.', usage: { input: 900, output: 2, cached: 512 } });
    const response = await ai.models.generateContent({
      model: MODEL,
      contents: 'Capital of France?',
      config: { systemInstruction: 'Answer in one word.' },
    });

    expect(response.text).toBe('Paris.');
    expect(response.candidates?.[0]?.finishReason).toBe(FinishReason.STOP);
    expect(response.usageMetadata).toMatchObject({
      promptTokenCount: 900,
      candidatesTokenCount: 2,
      totalTokenCount: 902,
      cachedContentTokenCount: 512,
    });
    expect(response.modelVersion).toBe(MODEL);
    expect(response.responseId).toBeTruthy();

    const recorded = fake.requests.at(-1);
    expect(recorded?.path).toBe(`/v1beta/models/${MODEL}:generateContent`);
    expect(recorded?.headers['x-goog-api-key']).toBe(API_KEY);
    expect(recorded?.body).toMatchObject({
      contents: [{ role: 'user', parts: [{ text: 'Capital of France?' }] }],
      systemInstruction: { parts: [{ text: 'Answer in one word.' }] },
    });
  });

  it('when content is streamed, then the SDK yields each chunk and the last one carries the final usage', async () => {
    fake.script({ kind: 'reply', chunks: ['Bon', 'jour', '!'], usage: { input: 12, output: 3 } });
    const stream = await ai.models.generateContentStream({ model: MODEL, contents: 'Say hello in French' });
    const texts: string[] = [];
    let last: Awaited<ReturnType<typeof ai.models.generateContent>> | undefined;
    for await (const chunk of stream) {
      texts.push(chunk.text ?? '');
      last = chunk;
    }
    expect(texts).toEqual(['Bon', 'jour', '!']);
    expect(last?.candidates?.[0]?.finishReason).toBe(FinishReason.STOP);
    expect(last?.usageMetadata).toMatchObject({
      promptTokenCount: 12,
      candidatesTokenCount: 3,
      totalTokenCount: 15,
    });
    const recorded = fake.requests.at(-1);
    expect(recorded?.path).toBe(`/v1beta/models/${MODEL}:streamGenerateContent`);
    expect(recorded?.query['alt']).toBe('sse');
  });

  it('when streamed on the wire, then frames are data lines separated by CRLF pairs with no [DONE]', async () => {
    const response = await fetch(`${fake.url}/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`, {
      method: 'POST',
      headers: { 'x-goog-api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const text = await response.text();
    expect(text.endsWith('\r\n\r\n')).toBe(true);
    const frames = text.split('\r\n\r\n').filter((frame) => frame.length > 0);
    expect(frames.length).toBeGreaterThan(1);
    expect(frames.every((frame) => frame.startsWith('data: {'))).toBe(true);
    expect(text).not.toContain('[DONE]');
  });

  it('when the model calls functions, then the SDK exposes them, streamed or not', async () => {
    fake.script(
      { kind: 'reply', toolCalls: [{ name: 'get_weather', arguments: { city: 'Rome' } }] },
      { kind: 'reply', text: 'Checking.', toolCalls: [{ name: 'get_time', arguments: { zone: 'CET' } }] },
    );
    const tools = [
      {
        functionDeclarations: [
          { name: 'get_weather', parametersJsonSchema: { type: 'object' } },
          { name: 'get_time', parametersJsonSchema: { type: 'object' } },
        ],
      },
    ];
    const plain = await ai.models.generateContent({
      model: MODEL,
      contents: 'Weather in Rome?',
      config: { tools },
    });
    expect(plain.functionCalls).toEqual([{ name: 'get_weather', args: { city: 'Rome' } }]);
    expect(plain.candidates?.[0]?.finishReason).toBe(FinishReason.STOP);

    const stream = await ai.models.generateContentStream({
      model: MODEL,
      contents: 'Time?',
      config: { tools },
    });
    const calls: unknown[] = [];
    let text = '';
    for await (const chunk of stream) {
      calls.push(...(chunk.functionCalls ?? []));
      text += chunk.candidates?.[0]?.content?.parts?.map((part) => part.text ?? '').join('') ?? '';
    }
    expect(text).toBe('Checking.');
    expect(calls).toEqual([{ name: 'get_time', args: { zone: 'CET' } }]);
  });

  it('when the answer hits the token limit, then finishReason is MAX_TOKENS', async () => {
    fake.script({ kind: 'reply', text: 'Once upon', finish: 'length' });
    const response = await ai.models.generateContent({
      model: MODEL,
      contents: 'story',
      config: { maxOutputTokens: 2 },
    });
    expect(response.candidates?.[0]?.finishReason).toBe(FinishReason.MAX_TOKENS);
  });

  it('when rate limited, then the SDK raises ApiError 429 with RESOURCE_EXHAUSTED and the RetryInfo delay', async () => {
    fake.script({ kind: 'error', status: 429, retryAfter: 38 });
    const error = await ai.models
      .generateContent({ model: MODEL, contents: 'x' })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(429);
    const body = JSON.parse((error as ApiError).message) as {
      error: { code: number; status: string; details: { '@type': string; retryDelay?: string }[] };
    };
    expect(body.error.code).toBe(429);
    expect(body.error.status).toBe('RESOURCE_EXHAUSTED');
    expect(
      body.error.details.find((detail) => detail['@type'].endsWith('google.rpc.RetryInfo'))?.retryDelay,
    ).toBe('38s');
  });

  it('when the model is unknown or the key invalid, then the SDK raises ApiError 404 or 400 with Google status names', async () => {
    const unknown = await ai.models
      .generateContent({ model: 'gemini-0-nano', contents: 'x' })
      .catch((caught: unknown) => caught);
    expect(unknown).toBeInstanceOf(ApiError);
    expect((unknown as ApiError).status).toBe(404);
    expect((unknown as ApiError).message).toContain('NOT_FOUND');

    const wrong = new GoogleGenAI({ apiKey: 'AIza-wrong', httpOptions: { baseUrl: fake.url } });
    const invalid = await wrong.models
      .generateContent({ model: MODEL, contents: 'x' })
      .catch((caught: unknown) => caught);
    expect(invalid).toBeInstanceOf(ApiError);
    expect((invalid as ApiError).status).toBe(400);
    expect((invalid as ApiError).message).toContain('API_KEY_INVALID');

    fake.script({ kind: 'error', status: 503 });
    const overloaded = await ai.models
      .generateContent({ model: MODEL, contents: 'x' })
      .catch((caught: unknown) => caught);
    expect((overloaded as ApiError).status).toBe(503);
    expect((overloaded as ApiError).message).toContain('UNAVAILABLE');
  });

  it('when no key is sent, then the API answers 403; when the key is a query parameter, then it is accepted', async () => {
    const request = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] };
    const anonymous = await fetch(`${fake.url}/v1beta/models/${MODEL}:generateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
    expect(anonymous.status).toBe(403);
    expect(((await anonymous.json()) as { error: { status: string } }).error.status).toBe(
      'PERMISSION_DENIED',
    );

    const byQuery = await fetch(`${fake.url}/v1beta/models/${MODEL}:generateContent?key=${API_KEY}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
    expect(byQuery.status).toBe(200);
    expect(byQuery.headers.get('content-type')).toBe('application/json; charset=UTF-8');
  });

  it('when an error chunk arrives mid-stream, then the SDK raises ApiError after the text sent', async () => {
    fake.script({ kind: 'stream-error', afterChunks: 1, status: 500, chunks: ['half', 'way'] });
    const stream = await ai.models.generateContentStream({ model: MODEL, contents: 'x' });
    let text = '';
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.text ?? '';
    })().catch((caught: unknown) => caught);
    expect(text).toBe('half');
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(500);
  });

  it('when the upstream hangs and the caller aborts, then the fake records the abort', async () => {
    fake.script({ kind: 'hang' });
    const controller = new AbortController();
    const pending = ai.models
      .generateContent({ model: MODEL, contents: 'x', config: { abortSignal: controller.signal } })
      .catch((caught: unknown) => caught);
    await fake.waitFor((request) => request.behaviour === 'hang');
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    expect((await fake.waitForAbort()).path).toBe(`/v1beta/models/${MODEL}:generateContent`);
  });

  it('when content is embedded, then the SDK reads batchEmbedContents vectors of the asked size', async () => {
    const result = await ai.models.embedContent({
      model: 'gemini-embedding-001',
      contents: ['alpha', 'beta'],
      config: { outputDimensionality: 256 },
    });
    expect(result.embeddings).toHaveLength(2);
    expect(result.embeddings?.[0]?.values).toHaveLength(256);
    expect(result.embeddings?.[0]?.values).not.toEqual(result.embeddings?.[1]?.values);
    expect(fake.requests.at(-1)?.path).toBe('/v1beta/models/gemini-embedding-001:batchEmbedContents');
  });
});
