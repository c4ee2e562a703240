import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './databases.js';
import { KEY_CHANGED } from './http-helpers.js';
import {
  DECISION,
  eventsOfType,
  INTERVENTION,
  JOB_CHANGED,
  type PolicyGateway,
  startPolicyGateway,
  testPostgres,
  within,
} from './policy-helpers.js';

// Rules that read the answer run after it: the official OpenAI SDK as the caller, the local provider
// scripted to answer long or short, streamed or not.
const POLICY = `
name: answers
rules:
  - id: long-answer
    condition: response.output_tokens > 100.0
    action: suspend_key
    message: answers over 100 tokens are not allowed for this key
  - id: left-early
    condition: response.status == "cancelled"
    action: { type: alert, channel: ops }
  - id: truncated-job
    condition: response.finish_reason == "length" && has(request.job)
    action: stop_job
    message: the job's answers were cut off at max_tokens
  - id: big-prompt
    condition: request.estimated_tokens > 100000.0
    action: block
`;

const ask = (outputTokens: number, extra: Record<string, unknown> = {}) => ({
  model: 'flowloom-local',
  messages: [
    {
      role: 'user' as const,
      content: `hello\nflowloom-local: ${JSON.stringify({ reply: 'a reply in a few pieces', outputTokens, chunks: 4, ...extra })}`,
    },
  ],
});

type Fields = { [key: string]: unknown };

let pg: TestDatabase;
beforeAll(async () => {
  pg = await testPostgres();
});
afterAll(async () => {
  await pg?.drop();
});

function client(t: PolicyGateway, key: string, defaultHeaders: Record<string, string> = {}): OpenAI {
  return new OpenAI({ apiKey: key, baseURL: `${t.url}/v1`, maxRetries: 0, defaultHeaders });
}

/** Whether the key is refused now (403, suspended), polling a cheap call until it is or `ms` pass. */
/**
 * Asks until the key is refused as suspended; returns how many asks were still answered before the
 * suspension, which lands after the answer that caused it, took effect.
 */
async function refusedWithin(ai: OpenAI, ms: number): Promise<number> {
  let answered = 0;
  await within(ms, async () => {
    try {
      await ai.chat.completions.create(ask(1));
      answered++;
      return false;
    } catch (error) {
      if (error instanceof OpenAI.APIError && error.status === 403 && error.code === 'key_suspended')
        return true;
      throw error;
    }
  });
  return answered;
}

async function decisionsOfRequest(t: PolicyGateway, requestId: string | null): Promise<Fields[]> {
  const all = await eventsOfType(t, DECISION);
  return all.map((e) => e.data).filter((d) => d.requestId === requestId);
}

/** The request's post-call decision, once recorded (a stream's is written when the stream ends). */
async function postCallDecision(t: PolicyGateway, requestId: string | null): Promise<Fields | undefined> {
  await within(3000, async () => (await decisionsOfRequest(t, requestId)).length === 2);
  return (await decisionsOfRequest(t, requestId)).find((d) => d.phase === 'post_call');
}

describe('post-call rules, enforced', () => {
  let t: PolicyGateway;
  beforeAll(async () => {
    t = await startPolicyGateway(POLICY, { db: pg.db });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('when a non-streamed answer is over the limit, then the caller gets it and the key is suspended after it', async () => {
    const { key, id } = await t.createKey();
    const ai = client(t, key);
    const short = await ai.chat.completions.create(ask(20));
    expect(short.usage?.completion_tokens).toBe(20);

    const { data, response } = await ai.chat.completions.create(ask(150)).withResponse();
    expect(data.usage?.completion_tokens).toBe(150);
    expect(data.choices[0]?.message.content).toBe('a reply in a few pieces');
    const answeredBeforeSuspension = await refusedWithin(ai, 3000);
    await t.gateway.policy.settled();

    const requestId = response.headers.get('x-request-id');
    const preCallId = response.headers.get('x-flowloom-decision');
    const [before, after] = await decisionsOfRequest(t, requestId);
    expect(before).toMatchObject({ decisionId: preCallId, phase: 'pre_call', verdict: 'allow' });
    // The answer joins the pre-call record too, so a replay can evaluate post-call rules on it.
    expect(before?.input).toMatchObject({ response: { output_tokens: 150, status: 'completed' } });
    expect(after).toMatchObject({
      phase: 'post_call',
      follows: preCallId,
      keyId: id,
      policy: 'answers',
      rule: 'long-answer',
      verdict: 'suspend_key',
      intendedVerdict: 'suspend_key',
      enforced: true,
      message: 'answers over 100 tokens are not allowed for this key',
      input: {
        request: { model: 'flowloom-local' },
        response: {
          input_tokens: expect.any(Number),
          output_tokens: 150,
          status: 'completed',
          finish_reason: 'stop',
        },
      },
    });
    const evaluation = (after?.evaluations as Fields[] | undefined)?.[0];
    expect(evaluation).toMatchObject({
      matched: ['long-answer'],
      inputs: { 'response.output_tokens': 150, 'response.status': 'completed' },
    });
    expect(evaluation?.inputs).not.toHaveProperty('request.estimated_tokens');
    const intervention = (await eventsOfType(t, INTERVENTION)).find(
      (e) => e.data.decisionId === after?.decisionId,
    );
    expect(intervention?.data).toMatchObject({ action: 'suspend_key', phase: 'post_call', enforced: true });
    const suspended = (await eventsOfType(t, KEY_CHANGED)).filter(
      (e) => e.data.keyId === id && e.data.action === 'suspended',
    );
    expect(suspended.map((e) => e.data.actor)).toEqual([
      expect.stringMatching(/^policy\/answers@[0-9a-f]{12} rule long-answer$/),
    ]);
    // The short answer before it had a post-call decision too, which changed nothing; so had each ask
    // answered while the suspension was landing.
    const decisions = (await eventsOfType(t, DECISION)).map((e) => e.data).filter((d) => d.keyId === id);
    expect(decisions.filter((d) => d.phase === 'post_call').map((d) => d.verdict)).toEqual([
      'allow',
      'suspend_key',
      ...Array<string>(answeredBeforeSuspension).fill('allow'),
    ]);
  });

  it('when a streamed answer is over the limit, then the stream completes and the key is suspended after it', async () => {
    const { key } = await t.createKey();
    const ai = client(t, key);
    const { data: stream, response } = await ai.chat.completions
      .create({ ...ask(150), stream: true, stream_options: { include_usage: true } })
      .withResponse();
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe('a reply in a few pieces');
    expect(usage?.completion_tokens).toBe(150);
    await refusedWithin(ai, 3000);
    await t.gateway.policy.settled();
    const decisions = await decisionsOfRequest(t, response.headers.get('x-request-id'));
    expect(decisions.map((d) => [d.phase, d.verdict])).toEqual([
      ['pre_call', 'allow'],
      ['post_call', 'suspend_key'],
    ]);
    expect(decisions[1]?.input).toMatchObject({
      request: { stream: true },
      response: { output_tokens: 150 },
    });
  });

  it('when the caller leaves mid-stream, then the post-call rules see the usage so far, marked cancelled and estimated', async () => {
    const { key } = await t.createKey();
    const ai = client(t, key);
    const controller = new AbortController();
    // 50 pieces of 20 characters, 40 ms apart; the provider reports its 500 tokens only at the end.
    const reply = 'twenty characters.. '.repeat(50);
    const { data: stream, response } = await ai.chat.completions
      .create(
        { ...ask(500, { reply, chunks: 50, chunkDelayMs: 40 }), stream: true },
        { signal: controller.signal },
      )
      .withResponse();
    let text = '';
    for await (const chunk of stream) {
      // Leaves after the first piece of text.
      text += chunk.choices[0]?.delta?.content ?? '';
      if (text === '') continue;
      controller.abort();
      break;
    }
    expect(text).toBe('twenty characters.. ');
    const after = await postCallDecision(t, response.headers.get('x-request-id'));
    expect(after).toMatchObject({
      phase: 'post_call',
      verdict: 'allow',
      actions: [{ ruleId: 'left-early', action: { type: 'alert', channel: 'ops' } }],
      input: { response: { status: 'cancelled', input_tokens: expect.any(Number), usage_estimated: true } },
    });
    // Not zero: what was streamed before the caller left (a piece or a few, 5 tokens each) is counted.
    const answer = (after as { input: { response: { output_tokens: number } } }).input.response;
    expect(answer.output_tokens).toBeGreaterThanOrEqual(5);
    expect(answer.output_tokens).toBeLessThan(100);
    // 500 tokens were scripted, but the answer was cut short before they were reported: no suspension.
    await t.gateway.policy.settled();
    await ai.chat.completions.create(ask(1));
  });

  it('when an answer of a job is cut off, then the job is stopped after it and its next request is refused', async () => {
    const { key } = await t.createKey();
    const job = client(t, key, { 'x-flowloom-job': 'batch-7' });
    const { data, response } = await job.chat.completions
      .create(ask(10, { finishReason: 'length' }))
      .withResponse();
    expect(data.choices[0]?.finish_reason).toBe('length');
    await t.gateway.policy.settled();
    const after = await postCallDecision(t, response.headers.get('x-request-id'));
    expect(after).toMatchObject({
      phase: 'post_call',
      job: 'batch-7',
      verdict: 'stop_job',
      rule: 'truncated-job',
    });
    const stopped = (await eventsOfType(t, JOB_CHANGED)).find((e) => e.data.job === 'batch-7');
    expect(stopped?.data).toMatchObject({
      status: 'stopped',
      decisionId: after?.decisionId,
      rule: 'truncated-job',
    });
    const refused = await job.chat.completions.create(ask(1)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).message).toContain(
      "the job's answers were cut off at max_tokens",
    );
    // The key itself is not suspended: another job goes on.
    expect((await client(t, key).chat.completions.create(ask(1))).choices).toHaveLength(1);
  });

  it('when embeddings are answered, then the post-call rules see their usage and cost too', async () => {
    const { key } = await t.createKey();
    const { data, response } = await client(t, key)
      .embeddings.create({ model: 'flowloom-local-embedding', input: ['one text', 'and another one'] })
      .withResponse();
    expect(data.data).toHaveLength(2);
    const after = await postCallDecision(t, response.headers.get('x-request-id'));
    expect(after).toMatchObject({
      phase: 'post_call',
      operation: 'embeddings',
      verdict: 'allow',
      input: {
        response: {
          input_tokens: data.usage.prompt_tokens,
          output_tokens: 0,
          status: 'completed',
          finish_reason: '',
        },
      },
    });
  });

  it('when a request is refused before the call, then there is no answer and no post-call decision', async () => {
    const { key } = await t.createKey();
    const ai = client(t, key);
    const huge = ask(1);
    huge.messages[0]!.content += ' x'.repeat(250_000);
    const error = await ai.chat.completions.create(huge).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    const requestId = (error as InstanceType<typeof OpenAI.APIError>).requestID ?? null;
    const decisions = await decisionsOfRequest(t, requestId);
    expect(decisions.map((d) => [d.phase, d.verdict])).toEqual([['pre_call', 'block']]);
    expect(decisions[0]?.input).not.toHaveProperty('response');
  });
});

describe('post-call rules in shadow mode', () => {
  let t: PolicyGateway;
  beforeAll(async () => {
    t = await startPolicyGateway(POLICY, { db: pg.db, mode: 'shadow' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('when an answer is over the limit, then the suspension is only recorded as intended and the key keeps working', async () => {
    const { key, id } = await t.createKey();
    const ai = client(t, key);
    for (const stream of [false, true]) {
      const { response } = await ai.chat.completions
        .create({ ...ask(150), stream: stream as false })
        .withResponse();
      if (stream) await response.text();
      await t.gateway.policy.settled();
      const after = await postCallDecision(t, response.headers.get('x-request-id'));
      expect(after).toMatchObject({
        phase: 'post_call',
        mode: 'shadow',
        verdict: 'allow',
        actions: [],
        intendedVerdict: 'suspend_key',
        intendedActions: [{ ruleId: 'long-answer', policy: 'answers', action: { type: 'suspend_key' } }],
        enforced: false,
      });
      const intervention = (await eventsOfType(t, INTERVENTION)).find(
        (e) => e.data.decisionId === after?.decisionId,
      );
      expect(intervention?.data).toMatchObject({ action: 'suspend_key', enforced: false, mode: 'shadow' });
    }
    const again = await ai.chat.completions.create(ask(1));
    expect(again.choices[0]?.message.content).toBe('a reply in a few pieces');
    expect(
      (await eventsOfType(t, KEY_CHANGED)).filter(
        (e) => e.data.keyId === id && e.data.action === 'suspended',
      ),
    ).toEqual([]);
  });
});
