import { startTestGateway, type TestGateway } from '@flowloom/gateway/testing';
import { GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let t: TestGateway;
let ai: GoogleGenAI;

beforeAll(async () => {
  t = await startTestGateway();
  const { key } = await t.createKey({ name: 'gemini-client' });
  ai = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: t.url } });
});
afterAll(async () => t.close());

describe('the Gemini API through FlowLoom with @google/genai', () => {
  it('when generateContent is called, then the SDK reads the text and the usage', async () => {
    const response = await ai.models.generateContent({
      model: 'flowloom-local',
      contents: 'flowloom-local: {"reply":"bonjour","inputTokens":9,"outputTokens":3}',
    });
    expect(response.text).toBe('bonjour');
    expect(response.usageMetadata).toMatchObject({
      promptTokenCount: 9,
      candidatesTokenCount: 3,
      totalTokenCount: 12,
    });
  });

  it('when streaming, then the chunks join to the scripted reply and the last carries usage', async () => {
    const stream = await ai.models.generateContentStream({
      model: 'flowloom-local',
      contents: 'flowloom-local: {"reply":"one two three four","chunks":4,"outputTokens":4}',
    });
    let text = '';
    let usage: number | undefined;
    for await (const chunk of stream) {
      text += chunk.text ?? '';
      usage = chunk.usageMetadata?.candidatesTokenCount ?? usage;
    }
    expect(text).toBe('one two three four');
    expect(usage).toBe(4);
  });

  it('when the model answers with a tool call, then the SDK sees a functionCall', async () => {
    const response = await ai.models.generateContent({
      model: 'flowloom-local',
      contents: 'flowloom-local: {"toolCalls":[{"name":"get_weather","arguments":{"city":"Oslo"}}]}',
      config: {
        tools: [
          {
            functionDeclarations: [
              {
                name: 'get_weather',
                parametersJsonSchema: { type: 'object', properties: { city: { type: 'string' } } },
              },
            ],
          },
        ],
      },
    });
    expect(response.functionCalls?.[0]).toMatchObject({ name: 'get_weather', args: { city: 'Oslo' } });
  });

  it('when the key is wrong, then the SDK raises an error with status 401', async () => {
    const bad = new GoogleGenAI({ apiKey: 'flk_not-a-key', httpOptions: { baseUrl: t.url } });
    await expect(
      bad.models.generateContent({ model: 'flowloom-local', contents: 'hi' }),
    ).rejects.toMatchObject({ status: 401 });
  });

  it('when no key is sent, then the 401 in the Gemini error shape says to send x-goog-api-key or ?key=', async () => {
    const res = await t.post('/v1beta/models/flowloom-local:generateContent', {
      contents: [{ parts: [{ text: 'x' }] }],
    });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({
      error: { code: 401, message: expect.stringMatching(/x-goog-api-key: <key>.*\?key=<key>/) },
    });
  });

  it('when the model is unknown, then the error is a 404 in the Gemini error shape', async () => {
    const res = await t.post(
      '/v1beta/models/no-such-model:generateContent',
      { contents: [{ parts: [{ text: 'x' }] }] },
      t.adminKey,
    );
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: { code: 404, status: 'NOT_FOUND' } });
  });
});
