import { describe, expect, it } from 'vitest';
import type { ChatRequest, StreamEvent } from '../canonical.js';
import { UpstreamFailure } from '../client.js';
import { createLocalProvider } from './local-provider.js';

const local = createLocalProvider();
const ask = (text: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: 'flowloom-local',
  messages: [{ role: 'user', content: [{ type: 'text', text }] }],
  stream: false,
  ...extra,
});
const signal = new AbortController().signal;

describe('local provider', () => {
  it('when asked twice the same thing, then it answers the same way', async () => {
    const a = await local.chat({ request: ask('hello'), model: 'flowloom-local', signal });
    const b = await local.chat({ request: ask('hello'), model: 'flowloom-local', signal });
    expect(a.content).toBe(b.content);
    expect(a.content).toContain('not a language model');
    expect(a.usage.outputTokens).toBeGreaterThan(0);
  });

  it('when scripted, then reply, tokens and tool calls follow the script, streamed or not', async () => {
    const script =
      'flowloom-local: {"reply":"abcdef","chunks":3,"inputTokens":5,"outputTokens":9,"cachedTokens":2,"toolCalls":[{"name":"t","arguments":{"x":1}}]}';
    const r = await local.chat({ request: ask(script), model: 'm', signal });
    expect(r).toMatchObject({
      content: 'abcdef',
      finishReason: 'tool_calls',
      usage: { inputTokens: 5, outputTokens: 9, cachedInputTokens: 2 },
    });
    expect(r.toolCalls[0]).toMatchObject({ name: 't', arguments: '{"x":1}' });
    const events: StreamEvent[] = [];
    for await (const e of local.chatStream({ request: ask(script, { stream: true }), model: 'm', signal }))
      events.push(e);
    expect(events.filter((e) => e.type === 'text').map((e) => (e.type === 'text' ? e.delta : ''))).toEqual([
      'ab',
      'cd',
      'ef',
    ]);
    expect(events.at(-1)).toEqual({ type: 'usage', usage: { outputTokens: 9 } });
  });

  it('when max_tokens is below the reply, then it stops with length', async () => {
    const r = await local.chat({
      request: ask('flowloom-local: {"reply":"a long reply indeed"}', { maxTokens: 2 }),
      model: 'm',
      signal,
    });
    expect(r.finishReason).toBe('length');
    expect(r.usage.outputTokens).toBe(2);
  });

  it('when scripted to fail or given a bad script, then it fails like an upstream', async () => {
    await expect(
      local.chat({ request: ask('flowloom-local: {"error":{"status":429}}'), model: 'm', signal }),
    ).rejects.toMatchObject({ status: 429, retryable: true });
    await expect(
      local.chat({ request: ask('flowloom-local: {"reply":1}'), model: 'm', signal }),
    ).rejects.toBeInstanceOf(UpstreamFailure);
  });

  it('when the caller aborts during a delay, then the call ends as aborted', async () => {
    const controller = new AbortController();
    const pending = local.chat({
      request: ask('flowloom-local: {"delayMs":5000}'),
      model: 'm',
      signal: controller.signal,
    });
    controller.abort(new Error('gone'));
    await expect(pending).rejects.toMatchObject({ kind: 'aborted' });
  });
});
