import type { ChatRequest } from '@flowloom/providers';
import { describe, expect, it } from 'vitest';
import { IMAGE_TOKENS_BOUND, inputTokensBound, textQuarterTokens, textTokensBound } from './input-tokens.js';

/**
 * Known token counts, from OpenAI's cl100k_base (GPT-4, GPT-3.5) and o200k_base (GPT-4o and later)
 * encodings as the gpt-tokenizer 3.4.0 package computes them. A budget reserves the estimate, so it must
 * be at least the larger of the two; for English prose it must stay close (within a third).
 */
const SAMPLES: ReadonlyArray<{ name: string; text: string; cl100k: number; o200k: number }> = [
  {
    name: 'English prose',
    text: 'The quick brown fox jumps over the lazy dog. Budgets are reserved before the call and settled after it, so concurrent requests cannot overshoot.',
    cl100k: 29,
    o200k: 29,
  },
  {
    name: 'Chinese',
    text: '人工智能网关在每个请求到达模型之前进行身份验证、策略检查和预算预留。当一个长时间运行的代理开始失控时，系统会限制、阻止或停止它，并记录原因。审计人员可以在不信任我们的情况下验证证据。',
    cl100k: 87,
    o200k: 61,
  },
  {
    name: 'Japanese',
    text: '予算は呼び出しの前に予約され、呼び出しの後に精算されるため、同時リクエストが予算を超えることはありません。',
    cl100k: 58,
    o200k: 42,
  },
  {
    name: 'Korean',
    text: '예산은 호출 전에 예약되고 호출 후에 정산되므로 동시 요청이 예산을 초과할 수 없습니다.',
    cl100k: 38,
    o200k: 27,
  },
  {
    name: 'Russian',
    text: 'Бюджеты резервируются до вызова и рассчитываются после него, поэтому параллельные запросы не могут превысить бюджет.',
    cl100k: 57,
    o200k: 29,
  },
  {
    name: 'Hindi',
    text: 'बजट कॉल से पहले आरक्षित किया जाता है और उसके बाद निपटाया जाता है, इसलिए समवर्ती अनुरोध बजट से अधिक नहीं हो सकते।',
    cl100k: 115,
    o200k: 35,
  },
  {
    name: 'Arabic',
    text: 'يتم حجز الميزانيات قبل الاستدعاء وتسويتها بعده، لذلك لا يمكن للطلبات المتزامنة تجاوز الميزانية.',
    cl100k: 66,
    o200k: 29,
  },
  { name: 'emoji', text: '😀🎉🚀🔥💯🦄🧠🤖👍🙏', cl100k: 28, o200k: 18 },
  { name: 'emoji sequences (ZWJ, skin tone, flag)', text: '👨‍👩‍👧‍👦👩🏽‍💻🏳️‍🌈', cl100k: 37, o200k: 24 },
  {
    name: 'minified code',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the sample is JavaScript with a template literal in it
    text: 'function f(a,b){return a.map((x,i)=>x*b[i]).reduce((s,v)=>s+v,0);}\nconst {x:y,...z}=o;if(!y||z?.q!==1)throw new Error(`bad ${y}`);',
    cl100k: 53,
    o200k: 54,
  },
  {
    name: 'JSON schema',
    text: '{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1}},"required":["city"]}',
    cl100k: 28,
    o200k: 30,
  },
  {
    name: 'hex digest',
    text: 'a3f9c2e17b4d08f6e5a91c3b7d2e4f60a8b9c1d2e3f405162738495a6b7c8d9e',
    cl100k: 52,
    o200k: 52,
  },
];

describe('textTokensBound', () => {
  it.each(SAMPLES)(
    'when the text is $name, then the bound is at least what cl100k_base and o200k_base count',
    ({ text, cl100k, o200k }) => {
      expect(textTokensBound(text)).toBeGreaterThanOrEqual(Math.max(cl100k, o200k));
    },
  );

  it('when the text is English prose, then the bound stays within a third of the real count, as 4 characters a token did', () => {
    const english = SAMPLES[0]!;
    expect(textTokensBound(english.text)).toBeLessThanOrEqual(Math.ceil(english.cl100k * 1.34));
    expect(textTokensBound(english.text)).toBeLessThanOrEqual(Math.ceil(english.text.length / 4) + 2);
  });

  it('when counted, then every CJK character is at least one token, an emoji up to four, and a lone surrogate no less than a pair', () => {
    expect(textQuarterTokens('预算')).toBe(12);
    expect(textQuarterTokens('😀')).toBe(16);
    expect(textQuarterTokens('\ud83d')).toBe(6);
    expect(textQuarterTokens('é')).toBe(4);
    expect(textQuarterTokens('')).toBe(0);
    // Letters and spaces at 4 a token; upper to lower case is how a word starts, not a split.
    expect(textTokensBound('Hello world')).toBe(3);
    // Lower to upper case and letters to digits are splits.
    expect(textQuarterTokens('aB')).toBe(textQuarterTokens('ab') + 2);
    expect(textQuarterTokens('a1')).toBe(textQuarterTokens('a') + textQuarterTokens('1') + 2);
  });
});

describe('inputTokensBound', () => {
  const cjk = '预算在调用之前预留，在调用之后结算。'; // 18 characters: 18 tokens in cl100k_base, 12 in o200k_base

  it('when a request holds CJK text in every place input can be, then each is counted at its bound, with 4 tokens a message and a bound per image', () => {
    const request: ChatRequest = {
      model: 'm',
      stream: false,
      tools: [{ name: 'lookup', description: cjk, parameters: { type: 'object' } }],
      responseFormat: { type: 'json_schema', name: 's', schema: { title: cjk } },
      messages: [
        { role: 'system', content: cjk },
        {
          role: 'user',
          content: [
            { type: 'text', text: cjk },
            { type: 'image', url: 'https://example.com/a.png' },
          ],
        },
        {
          role: 'assistant',
          content: cjk,
          toolCalls: [{ id: 'c1', name: 'lookup', arguments: JSON.stringify({ q: cjk }) }],
        },
        { role: 'tool', toolCallId: 'c1', content: cjk },
      ],
    };
    const quarters =
      textQuarterTokens('lookup') * 2 +
      textQuarterTokens(cjk) +
      textQuarterTokens(JSON.stringify({ type: 'object' })) +
      textQuarterTokens(JSON.stringify({ title: cjk })) +
      textQuarterTokens(cjk) * 4 +
      textQuarterTokens(JSON.stringify({ q: cjk }));
    expect(inputTokensBound(request)).toBe(Math.ceil(quarters / 4) + IMAGE_TOKENS_BOUND + 4 * 4);
    // Seven copies of the text, each at least the 18 tokens cl100k_base counts.
    expect(inputTokensBound(request)).toBeGreaterThan(7 * 18 + IMAGE_TOKENS_BOUND);
  });
});
