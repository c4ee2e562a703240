import { describe, expect, it } from 'vitest';
import type { ChatRequest, ChatResponse, ReasoningConfig } from '../../canonical.js';
import { decodeGeminiRequest, geminiCaller } from './caller.js';
import { encodeGeminiRequest } from './provider.js';

const route = { model: 'gemini-2.5-flash', stream: false };
const hello = { contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] };
const withThinking = (thinkingConfig: object): unknown => ({
  ...hello,
  generationConfig: { thinkingConfig },
});

const canonical = (reasoning: ReasoningConfig, overrides: Partial<ChatRequest> = {}): ChatRequest => ({
  model: 'm',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Think.' }] }],
  stream: false,
  reasoning,
  ...overrides,
});

const thinkingConfigFor = (reasoning: ReasoningConfig, model: string): unknown =>
  encodeGeminiRequest(canonical(reasoning), model).generationConfig?.thinkingConfig;

describe('gemini thinkingConfig', () => {
  it.each([
    [{ thinkingBudget: 0 }, { type: 'disabled' }],
    [{ thinkingBudget: -1 }, { type: 'adaptive' }],
    [{ thinkingBudget: 4096 }, { type: 'budget', budgetTokens: 4096 }],
    [{ thinking_budget: 2048 }, { type: 'budget', budgetTokens: 2048 }],
    [{ thinkingLevel: 'LOW' }, { type: 'effort', effort: 'low' }],
    [{ thinkingLevel: 'high' }, { type: 'effort', effort: 'high' }],
    [{ thinkingLevel: 'THINKING_LEVEL_UNSPECIFIED' }, undefined],
  ])('when thinkingConfig is %j, then the canonical reasoning is %j', (config, expected) => {
    expect(decodeGeminiRequest(withThinking(config), route).reasoning).toEqual(expected);
  });

  it('when thinkingBudget and thinkingLevel are both set, then the request is rejected as Gemini does', () => {
    expect(() =>
      decodeGeminiRequest(withThinking({ thinkingBudget: 1024, thinkingLevel: 'LOW' }), route),
    ).toThrowError(
      expect.objectContaining({
        code: 'invalid_request',
        param: 'generationConfig.thinkingConfig.thinkingLevel',
      }),
    );
  });

  it('when thinkingBudget is below -1, then the request is rejected naming it', () => {
    expect(() => decodeGeminiRequest(withThinking({ thinkingBudget: -5 }), route)).toThrowError(
      expect.objectContaining({ param: 'generationConfig.thinkingConfig.thinkingBudget' }),
    );
  });

  it('when a Gemini 2.5 caller sets a budget, then the Gemini upstream gets the same budget', () => {
    const decoded = decodeGeminiRequest(withThinking({ thinkingBudget: 4096 }), route);
    expect(encodeGeminiRequest(decoded, 'gemini-2.5-flash').generationConfig?.thinkingConfig).toEqual({
      thinkingBudget: 4096,
    });
  });

  it('when an effort goes to Gemini 2.x, then it becomes the documented budget (none: 0)', () => {
    expect(thinkingConfigFor({ type: 'effort', effort: 'low' }, 'gemini-2.5-flash')).toEqual({
      thinkingBudget: 1024,
    });
    expect(thinkingConfigFor({ type: 'effort', effort: 'medium' }, 'gemini-2.5-pro')).toEqual({
      thinkingBudget: 8192,
    });
    expect(thinkingConfigFor({ type: 'effort', effort: 'high' }, 'gemini-2.5-flash')).toEqual({
      thinkingBudget: 24_576,
    });
    expect(thinkingConfigFor({ type: 'effort', effort: 'none' }, 'gemini-2.5-flash')).toEqual({
      thinkingBudget: 0,
    });
  });

  it('when any thinking setting goes to a Gemini model that does not think, then it is dropped', () => {
    for (const model of ['gemini-2.0-flash', 'gemini-1.5-pro', 'models/gemini-2.0-flash-lite']) {
      expect(thinkingConfigFor({ type: 'budget', budgetTokens: 4096 }, model)).toBeUndefined();
      expect(thinkingConfigFor({ type: 'effort', effort: 'high' }, model)).toBeUndefined();
    }
  });

  it('when an effort goes to Gemini 3, then it is sent as thinkingLevel, and off becomes MINIMAL', () => {
    expect(thinkingConfigFor({ type: 'effort', effort: 'medium' }, 'gemini-3-pro-preview')).toEqual({
      thinkingLevel: 'MEDIUM',
    });
    expect(thinkingConfigFor({ type: 'effort', effort: 'xhigh' }, 'gemini-3-flash')).toEqual({
      thinkingLevel: 'HIGH',
    });
    expect(thinkingConfigFor({ type: 'disabled' }, 'gemini-3-flash')).toEqual({ thinkingLevel: 'MINIMAL' });
  });

  it('when an Anthropic budget, disabled or adaptive thinking goes to Gemini 2.x, then budgets 10000, 0 and -1 are sent', () => {
    expect(thinkingConfigFor({ type: 'budget', budgetTokens: 10_000 }, 'gemini-2.5-pro')).toEqual({
      thinkingBudget: 10_000,
    });
    expect(thinkingConfigFor({ type: 'disabled' }, 'gemini-2.5-flash')).toEqual({ thinkingBudget: 0 });
    expect(thinkingConfigFor({ type: 'adaptive' }, 'gemini-2.5-flash')).toEqual({ thinkingBudget: -1 });
    expect(thinkingConfigFor({ type: 'adaptive' }, 'gemini-3-pro-preview')).toBeUndefined();
  });

  it('when Anthropic cache breakpoints and thinking history reach Gemini, then they are dropped, not errors', () => {
    const body = encodeGeminiRequest(
      canonical(
        { type: 'disabled' },
        {
          messages: [
            { role: 'system', content: 'Manual.', cacheControl: { type: 'ephemeral' } },
            { role: 'user', content: [{ type: 'text', text: 'Hi', cacheControl: { type: 'ephemeral' } }] },
            { role: 'assistant', content: 'Yes.', reasoning: [{ type: 'redacted', data: 'opaque' }] },
          ],
          cacheControl: { type: 'ephemeral' },
        },
      ),
      'gemini-2.5-flash',
    );
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'Manual.' }] });
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'Hi' }] },
      { role: 'model', parts: [{ text: 'Yes.' }] },
    ]);
  });

  it('when reasoning tokens are known, then a Gemini caller sees them as thoughtsTokenCount beside the candidates', () => {
    const response: ChatResponse = {
      id: 'r',
      model: 'claude',
      created: 1,
      content: 'Answer.',
      toolCalls: [],
      reasoning: [{ type: 'thinking', text: 'hidden', signature: 's' }],
      finishReason: 'stop',
      usage: { inputTokens: 100, outputTokens: 90, cachedInputTokens: 40, reasoningTokens: 70 },
    };
    const body = geminiCaller.encodeChatResponse(response, 'claude');
    expect(body.usageMetadata).toEqual({
      promptTokenCount: 100,
      candidatesTokenCount: 20,
      thoughtsTokenCount: 70,
      totalTokenCount: 190,
      cachedContentTokenCount: 40,
    });
    expect(JSON.stringify(body)).not.toContain('hidden');
  });
});
