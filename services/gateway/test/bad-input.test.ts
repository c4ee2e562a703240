import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ErrorFormat, eventsOf, expectError, REQUEST_COMPLETED, send } from './http-helpers.js';
import { startTestGateway, type TestGateway, type TestResponse } from './support.js';

// Every bad request gets the right status and an error in the caller's format with a request id,
// and changes nothing: no key appears or disappears and no request is recorded as completed.

const MAX_BODY = 2048;
let t: TestGateway;
let key: string;

interface Endpoint {
  name: string;
  path: string;
  format: ErrorFormat;
  valid: Record<string, unknown>;
  /** Fields with the wrong type, and the param the error must name. */
  wrongTypes: Array<[Record<string, unknown>, string]>;
  /** Required fields, each removed in turn. */
  required: string[];
}

const endpoints: Endpoint[] = [
  {
    name: 'chat completions',
    path: '/v1/chat/completions',
    format: 'openai',
    valid: { model: 'flowloom-local', messages: [{ role: 'user', content: 'hi' }] },
    wrongTypes: [
      [{ messages: 'hi' }, 'messages'],
      [{ temperature: 'hot' }, 'temperature'],
      [{ model: 42 }, 'model'],
      [{ stream: 'yes' }, 'stream'],
      [{ max_tokens: -5 }, 'max_tokens'],
      [{ n: 2 }, 'n'],
    ],
    required: ['model', 'messages'],
  },
  {
    name: 'messages',
    path: '/v1/messages',
    format: 'anthropic',
    valid: { model: 'flowloom-local', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
    wrongTypes: [
      [{ messages: 'hi' }, 'messages'],
      [{ temperature: 'hot' }, 'temperature'],
      [{ max_tokens: 'lots' }, 'max_tokens'],
      [{ model: ['flowloom-local'] }, 'model'],
    ],
    required: ['model', 'messages', 'max_tokens'],
  },
  {
    name: 'embeddings',
    path: '/v1/embeddings',
    format: 'openai',
    valid: { model: 'flowloom-local-embedding', input: 'hello' },
    wrongTypes: [
      [{ input: 42 }, 'input'],
      [{ dimensions: 'many' }, 'dimensions'],
      [{ encoding_format: 'hex' }, 'encoding_format'],
    ],
    required: ['model', 'input'],
  },
];

interface Snapshot {
  keys: string;
  completed: number;
}

async function snapshot(): Promise<Snapshot> {
  const keys = await t.get('/api/v1/keys?includeRevoked=true', t.adminKey);
  const events = await eventsOf(t);
  return { keys: keys.text, completed: events.filter((e) => e.type === REQUEST_COMPLETED).length };
}

let before: Snapshot;

async function expectNothingChanged(): Promise<void> {
  expect(await snapshot()).toEqual(before);
}

function jsonHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...extra };
}

beforeAll(async () => {
  t = await startTestGateway({ overrides: { maxBodyBytes: MAX_BODY } });
  key = (await t.createKey({ project: 'bad-input' })).key;
});
afterAll(async () => t.close());
beforeEach(async () => {
  before = await snapshot();
});

describe.each(endpoints)('bad input on $path', (endpoint) => {
  const post = (body: string | Uint8Array, headers = jsonHeaders()): Promise<TestResponse> =>
    send(t, endpoint.path, { headers, body });
  const expectBad = (res: TestResponse, status: number, code: string) =>
    expectError(res, endpoint.format, status, code);

  it('when the body is valid, then it is answered (the control case)', async () => {
    const res = await post(JSON.stringify(endpoint.valid));
    expect(res.status, res.text).toBe(200);
  });

  it('when the JSON is malformed, then it is a 400 invalid_json', async () => {
    for (const body of ['{"model": "flowloom-local", ', '{model: flowloom-local}', "{'a': 1}", '{"a":1}}']) {
      expectBad(await post(body), 400, 'invalid_json');
    }
    await expectNothingChanged();
  });

  it('when the body is empty or blank, then it is a 400 invalid_json', async () => {
    expectBad(await post(''), 400, 'invalid_json');
    expectBad(await post('   \n '), 400, 'invalid_json');
    await expectNothingChanged();
  });

  it('when the JSON is not an object, then it is a 400 invalid_request', async () => {
    for (const body of ['[]', 'null', '"hello"', '42', 'true']) {
      expectBad(await post(body), 400, 'invalid_request');
    }
    await expectNothingChanged();
  });

  it('when a field has the wrong type, then it is a 400 naming that field', async () => {
    for (const [patch, param] of endpoint.wrongTypes) {
      const res = await post(JSON.stringify({ ...endpoint.valid, ...patch }));
      const message = expectBad(res, 400, 'invalid_request');
      expect(message, JSON.stringify(patch)).toContain(param);
      if (endpoint.format === 'openai')
        expect((res.body as { error: { param: string } }).error.param).toBe(param);
    }
    await expectNothingChanged();
  });

  it('when a required field is missing, then it is a 400 naming that field', async () => {
    for (const field of endpoint.required) {
      const { [field]: _dropped, ...rest } = endpoint.valid;
      const message = expectBad(await post(JSON.stringify(rest)), 400, 'invalid_request');
      expect(message, field).toContain(field);
    }
    await expectNothingChanged();
  });

  it('when the model is unknown, then it is a 404 model_not_found and nothing completes', async () => {
    const message = expectBad(
      await post(JSON.stringify({ ...endpoint.valid, model: 'no-such-model-anywhere' })),
      404,
      'model_not_found',
    );
    expect(message).toContain('no-such-model-anywhere');
    await expectNothingChanged();
  });

  it('when the model name is a built-in object property, then it is a 404 model_not_found, not a 500', async () => {
    for (const model of ['constructor', 'toString', '__proto__', 'valueOf']) {
      const res = await post(JSON.stringify({ ...endpoint.valid, model }));
      expectBad(res, 404, 'model_not_found');
    }
    await expectNothingChanged();
  });

  it('when the body is larger than the limit, then it is a 413 in the caller format', async () => {
    const big = JSON.stringify({ ...endpoint.valid, padding: 'x'.repeat(MAX_BODY * 2) });
    const res = await post(big);
    expectBad(res, 413, 'body_too_large');
    // It says what the limit is, and the setting that raises it.
    expect(res.text).toContain(`${MAX_BODY.toLocaleString('en-US')} bytes`);
    expect(res.text).toContain('FLOWLOOM_MAX_BODY_BYTES');
    await expectNothingChanged();
  });

  it('when the body is not valid UTF-8, then it is a 400 invalid_utf8', async () => {
    const text = JSON.stringify({ ...endpoint.valid, user: 'AB' });
    const bytes = Buffer.from(text, 'utf8');
    const at = bytes.indexOf('AB');
    bytes[at] = 0xc3;
    bytes[at + 1] = 0x28;
    expectBad(await post(bytes), 400, 'invalid_utf8');
    // A lone continuation byte and an overlong encoding are invalid too.
    expectBad(
      await post(Buffer.concat([Buffer.from('{"model":"'), Buffer.from([0x80]), Buffer.from('"}')])),
      400,
      'invalid_utf8',
    );
    expectBad(
      await post(Buffer.concat([Buffer.from('{"model":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])),
      400,
      'invalid_utf8',
    );
    await expectNothingChanged();
  });

  it('when the content type is not JSON, then it is a 415', async () => {
    for (const contentType of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      expectBad(
        await post(JSON.stringify(endpoint.valid), jsonHeaders({ 'content-type': contentType })),
        415,
        'unsupported_media_type',
      );
    }
    await expectNothingChanged();
  });

  it('when the content type carries a charset, then the JSON is still accepted', async () => {
    const res = await post(
      JSON.stringify(endpoint.valid),
      jsonHeaders({ 'content-type': 'application/json; charset=utf-8' }),
    );
    expect(res.status, res.text).toBe(200);
  });

  it('when no key is sent, then it is a 401 missing_api_key', async () => {
    const res = await post(JSON.stringify(endpoint.valid), { 'content-type': 'application/json' });
    expectBad(res, 401, 'missing_api_key');
    // Where to put it, in the terms of the caller's own SDK first.
    expect(res.text).toContain(
      endpoint.format === 'anthropic'
        ? 'Send it as \\"x-api-key: <key>\\"'
        : 'Send it as \\"Authorization: Bearer <key>\\"',
    );
    await expectNothingChanged();
  });

  it('when an unknown or absurd key is sent, then it is a 401 invalid_api_key', async () => {
    for (const bad of ['flk_unknown-key-000000000000000000000000', 'x'.repeat(600)]) {
      expectBad(
        await post(JSON.stringify(endpoint.valid), jsonHeaders({ authorization: `Bearer ${bad}` })),
        401,
        'invalid_api_key',
      );
    }
    await expectNothingChanged();
  });

  it('when an x-flowloom-job/session/project header is hostile, then it is a 400 naming the header', async () => {
    const hostile = ['two words', 'tab\there', 'caf\u00e9', 'x'.repeat(201), '"quoted" <b>'];
    for (const header of ['x-flowloom-job', 'x-flowloom-session', 'x-flowloom-project']) {
      for (const value of hostile) {
        const res = await post(JSON.stringify(endpoint.valid), jsonHeaders({ [header]: value }));
        const message = expectBad(res, 400, 'invalid_request');
        expect(message, `${header}: ${value}`).toContain(header);
        if (endpoint.format === 'openai')
          expect((res.body as { error: { param: string } }).error.param).toBe(header);
      }
    }
    await expectNothingChanged();
  });

  it("when the project header names another project than the key's, then it is a 403", async () => {
    const res = await post(
      JSON.stringify(endpoint.valid),
      jsonHeaders({ 'x-flowloom-project': 'someone-else' }),
    );
    expectBad(res, 403, 'forbidden');
    await expectNothingChanged();
    const own = await post(
      JSON.stringify(endpoint.valid),
      jsonHeaders({ 'x-flowloom-project': 'bad-input' }),
    );
    expect(own.status, own.text).toBe(200);
  });

  it('when a job tag is at the limits of what is allowed, then it is accepted', async () => {
    for (const job of ['j', 'x'.repeat(200), 'job-1/step_2:retry.3']) {
      const res = await post(JSON.stringify(endpoint.valid), jsonHeaders({ 'x-flowloom-job': job }));
      expect(res.status, `${job}: ${res.text}`).toBe(200);
    }
  });

  it('when the body carries __proto__, then nothing is polluted and the request is handled normally', async () => {
    const body = `{"__proto__":{"polluted":"yes"},${JSON.stringify(endpoint.valid).slice(1)}`;
    const res = await post(body);
    expect(res.status, res.text).toBe(200);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('n and the error body', () => {
  it('when n=2 is asked, then the error names n and says only one choice is supported', async () => {
    const res = await t.post('/v1/chat/completions', { ...endpoints[0]?.valid, n: 2 }, key);
    const body = res.body as { error: { message: string; param: string; type: string } };
    expect(res.status).toBe(400);
    expect(body.error.param).toBe('n');
    expect(body.error.type).toBe('invalid_request_error');
  });

  it('when a 4xx is answered, then the request id header differs for every request', async () => {
    const ids = new Set<string | null>();
    for (let i = 0; i < 3; i++)
      ids.add((await t.post('/v1/chat/completions', '{', key)).headers.get('x-request-id'));
    expect(ids.size).toBe(3);
  });
});
