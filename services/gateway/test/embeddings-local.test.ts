import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsOf, expectOpenAIError, REQUEST_COMPLETED } from './http-helpers.js';
import { startTestGateway, type TestGateway } from './support.js';

const MODEL = 'flowloom-local-embedding';

interface EmbeddingList<E> {
  object: string;
  data: Array<{ object: string; index: number; embedding: E }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

let t: TestGateway;
let key: string;

beforeAll(async () => {
  t = await startTestGateway();
  key = (await t.createKey({ name: 'embeddings', project: 'vectors' })).key;
});
afterAll(async () => t.close());

async function embed<E = number[]>(body: Record<string, unknown>) {
  const res = await t.post('/v1/embeddings', { model: MODEL, ...body }, key);
  expect(res.status, res.text).toBe(200);
  return { res, body: res.body as EmbeddingList<E> };
}

const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

function decodeBase64(text: string): number[] {
  const bytes = Buffer.from(text, 'base64');
  const floats = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return Array.from(floats);
}

describe('embeddings on the local model', () => {
  it('when a list of texts is embedded, then each gets a unit vector at its index, in the OpenAI list shape', async () => {
    const { res, body } = await embed({ input: ['alpha', 'beta', 'gamma'] });
    expect(res.headers.get('x-flowloom-deployment')).toBe(`local/${MODEL}`);
    expect(body.object).toBe('list');
    expect(body.model).toBe(MODEL);
    expect(body.data.map((d) => [d.object, d.index])).toEqual([
      ['embedding', 0],
      ['embedding', 1],
      ['embedding', 2],
    ]);
    for (const d of body.data) {
      expect(d.embedding).toHaveLength(256);
      expect(d.embedding.every(Number.isFinite)).toBe(true);
      expect(norm(d.embedding)).toBeCloseTo(1, 6);
    }
    expect(body.data[0]?.embedding).not.toEqual(body.data[1]?.embedding);
  });

  it('when the same text is embedded twice, then the vectors are equal (deterministic)', async () => {
    const first = await embed({ input: 'same text' });
    const second = await embed({ input: ['other', 'same text'] });
    expect(second.body.data[1]?.embedding).toEqual(first.body.data[0]?.embedding);
  });

  it('when dimensions is given, then every vector has that many and is still normalized', async () => {
    for (const dimensions of [1, 8, 64, 1536]) {
      const { body } = await embed({ input: ['a', 'b'], dimensions });
      for (const d of body.data) {
        expect(d.embedding).toHaveLength(dimensions);
        expect(norm(d.embedding)).toBeCloseTo(1, 6);
      }
    }
  });

  it('when encoding_format is base64, then it decodes (float32) to the same vectors as the float format', async () => {
    const input = ['first text', 'second text'];
    const floats = await embed({ input, dimensions: 32, encoding_format: 'float' });
    const packed = await embed<string>({ input, dimensions: 32, encoding_format: 'base64' });
    expect(packed.body.data).toHaveLength(2);
    packed.body.data.forEach((d, i) => {
      expect(typeof d.embedding).toBe('string');
      expect(d.embedding).toMatch(/^[A-Za-z0-9+/]+=*$/);
      const decoded = decodeBase64(d.embedding);
      const expected = floats.body.data[i]?.embedding ?? [];
      expect(decoded).toHaveLength(32);
      expect(decoded).toEqual(expected.map((x) => Math.fround(x)));
    });
    expect(packed.body.usage).toEqual(floats.body.usage);
  });

  it('when texts are embedded, then usage counts their prompt tokens and total equals prompt', async () => {
    const { body } = await embed({ input: ['x'.repeat(40), 'y'.repeat(9)] });
    // The local provider counts a token per four characters, rounded up.
    expect(body.usage).toEqual({ prompt_tokens: 10 + 3, total_tokens: 13 });
  });

  it('when an embedding is answered, then a completed event records the usage with no output tokens', async () => {
    const { res, body } = await embed({ input: 'event me' });
    const events = await eventsOf(t);
    const completed = events.find((e) => e.data.requestId === res.headers.get('x-request-id'));
    expect(completed?.type).toBe(REQUEST_COMPLETED);
    expect(completed?.data).toMatchObject({
      operation: 'embeddings',
      model: MODEL,
      project: 'vectors',
      deployment: `local/${MODEL}`,
      stream: false,
      attempts: 1,
      usage: { inputTokens: body.usage.prompt_tokens, outputTokens: 0, cachedInputTokens: 0 },
      costUsd: 0,
    });
  });

  it('when the input list is empty or dimensions is not positive, then it is a 400 and nothing is recorded', async () => {
    const before = (await eventsOf(t)).length;
    expectOpenAIError(
      await t.post('/v1/embeddings', { model: MODEL, input: [] }, key),
      400,
      'invalid_request',
    );
    expectOpenAIError(
      await t.post('/v1/embeddings', { model: MODEL, input: 'a', dimensions: 0 }, key),
      400,
      'invalid_request',
    );
    expectOpenAIError(
      await t.post('/v1/embeddings', { model: MODEL, input: 'a', dimensions: 1.5 }, key),
      400,
      'invalid_request',
    );
    expect((await eventsOf(t)).length).toBe(before);
  });
});
