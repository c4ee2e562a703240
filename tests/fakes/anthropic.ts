import { randomUUID } from 'node:crypto';
import type {
  Headers,
  HttpAnswer,
  IncomingCall,
  ModelCall,
  ProviderRouter,
  Routed,
  StreamErrorSpec,
  StreamFrame,
} from './server.js';
import { SSE_CONTENT_TYPE } from './server.js';
import type { FakeErrorBehaviour, FakeFinish, FakeReplyContent, FakeThinkingBlock } from './types.js';
import {
  argumentsJson,
  argumentsObject,
  asArray,
  asString,
  estimatePromptTokens,
  isRecord,
  numberField,
  type ResolvedAnswer,
  randomId,
  resolveAnswer,
  splitInto,
  splitWords,
  textOfContent,
} from './util.js';

export const ANTHROPIC_MODELS: readonly string[] = [
  'claude-opus-5',
  'claude-sonnet-5',
  'claude-opus-4-8',
  'claude-opus-4-7',
  'claude-opus-4-6',
  'claude-sonnet-4-6',
  'claude-opus-4-5',
  'claude-opus-4-5-20251101',
  'claude-sonnet-4-5',
  'claude-sonnet-4-5-20250929',
  'claude-haiku-4-5',
  'claude-haiku-4-5-20251001',
  'claude-opus-4-1-20250805',
  'claude-sonnet-4-20250514',
];

export const ANTHROPIC_VERSIONS: readonly string[] = ['2023-06-01', '2023-01-01'];

const JSON_TYPE = 'application/json';

const ERROR_DEFAULTS: Readonly<Record<number, readonly [string, string]>> = {
  400: ['invalid_request_error', 'Invalid request'],
  401: ['authentication_error', 'invalid x-api-key'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'Not found'],
  413: ['request_too_large', 'Request exceeds the maximum allowed number of bytes.'],
  429: [
    'rate_limit_error',
    'Number of request tokens has exceeded your per-minute rate limit (https://docs.claude.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.',
  ],
  500: ['api_error', 'Internal server error'],
  504: ['timeout_error', 'Request timed out'],
  529: ['overloaded_error', 'Overloaded'],
};

function errorDefaults(status: number): readonly [string, string] {
  return (
    ERROR_DEFAULTS[status] ??
    (status >= 500 ? ['api_error', 'Internal server error'] : ['invalid_request_error', 'Invalid request'])
  );
}

function stopReason(finish: FakeFinish): string {
  switch (finish) {
    case 'stop':
      return 'end_turn';
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
      return 'tool_use';
    case 'stop_sequence':
      return 'stop_sequence';
    case 'content_filter':
      return 'refusal';
  }
}

/** `output_tokens_details` is reported for answers that thought (or when a test sets the count). */
function thinkingDetails(answer: ResolvedAnswer): Record<string, unknown> {
  const { reasoning } = answer.usage;
  return answer.thinking.length > 0 || reasoning > 0
    ? { output_tokens_details: { thinking_tokens: reasoning } }
    : {};
}

function usageObject(answer: ResolvedAnswer, outputTokens: number): Record<string, unknown> {
  const { input, cached, cacheWrite, cacheWrite1h } = answer.usage;
  return {
    input_tokens: Math.max(0, input - cached - cacheWrite),
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cached,
    cache_creation: {
      ephemeral_5m_input_tokens: cacheWrite - cacheWrite1h,
      ephemeral_1h_input_tokens: cacheWrite1h,
    },
    output_tokens: outputTokens,
    service_tier: 'standard',
  };
}

/** A signature-shaped opaque value (base64, as the API's start with `Eq`/`Er`). */
function fakeSignature(): string {
  return `EqQB${Buffer.from(randomId(72)).toString('base64')}`;
}

function thinkingBlock(block: FakeThinkingBlock): Record<string, unknown> {
  return 'redacted' in block
    ? { type: 'redacted_thinking', data: block.redacted }
    : { type: 'thinking', thinking: block.thinking, signature: block.signature ?? fakeSignature() };
}

export interface AnthropicRouterOptions {
  apiKey: string | undefined;
  models: readonly string[];
}

export function createAnthropicRouter(options: AnthropicRouterOptions): ProviderRouter {
  const known = new Set(options.models);
  const versions = new Set(ANTHROPIC_VERSIONS);
  const organization = randomUUID();
  const staticHeaders: Headers = {
    'anthropic-organization-id': organization,
    'anthropic-ratelimit-requests-limit': '4000',
    'anthropic-ratelimit-requests-remaining': '3999',
    'anthropic-ratelimit-input-tokens-limit': '2000000',
    'anthropic-ratelimit-input-tokens-remaining': '1999000',
    'anthropic-ratelimit-output-tokens-limit': '400000',
    'anthropic-ratelimit-output-tokens-remaining': '399000',
    'anthropic-ratelimit-tokens-limit': '2400000',
    'anthropic-ratelimit-tokens-remaining': '2398000',
  };

  const json = (status: number, headers: Headers, body: unknown): HttpAnswer => ({
    status,
    headers: { ...headers, 'content-type': JSON_TYPE },
    body: JSON.stringify(body),
  });

  const errorAnswer = (
    status: number,
    headers: Headers,
    type: string,
    message: string,
    extraHeaders?: Headers,
  ): HttpAnswer =>
    json(
      status,
      { ...headers, ...extraHeaders },
      {
        type: 'error',
        error: { type, message },
        request_id: headers['request-id'],
      },
    );

  const behaviourError = (behaviour: FakeErrorBehaviour, headers: Headers): HttpAnswer => {
    const [type, message] = errorDefaults(behaviour.status);
    const extra: Headers = { ...behaviour.headers };
    if (behaviour.retryAfter !== undefined) extra['retry-after'] = String(behaviour.retryAfter);
    if (behaviour.status === 429) extra['anthropic-ratelimit-requests-remaining'] = '0';
    return errorAnswer(
      behaviour.status,
      headers,
      behaviour.type ?? type,
      behaviour.message ?? message,
      extra,
    );
  };

  const event = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

  const streamErrorFrame = (spec: StreamErrorSpec): string => {
    const [type, message] = errorDefaults(spec.status);
    return event('error', {
      type: 'error',
      error: { type: spec.type ?? type, message: spec.message ?? message },
    });
  };

  const garbageFrames = (): string =>
    'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_trunc\n\n' +
    'event: content_block_delta\ndata: <html><body>upstream proxy error</body></html>\n\n';

  function messagesCall(body: Record<string, unknown>, model: string, headers: Headers): ModelCall {
    const messages = asArray(body['messages']);
    let promptText = textOfContent(body['system']);
    let lastUserText = '';
    for (const message of messages) {
      if (!isRecord(message)) continue;
      const text = textOfContent(message['content']);
      promptText += text;
      if (message['role'] === 'user') lastUserText = text;
    }
    const context = {
      provider: 'anthropic',
      model,
      lastUserText,
      promptText,
      promptMessages: messages.length,
      maxTokens: numberField(body, 'max_tokens'),
    };
    const toolIds = (answer: ResolvedAnswer): string[] =>
      answer.toolCalls.map((call) => call.id ?? `toolu_01${randomId(22)}`);
    const hasTextBlock = (answer: ResolvedAnswer): boolean =>
      answer.text.length > 0 || answer.toolCalls.length === 0;

    return {
      stream: body['stream'] === true,
      baseHeaders: () => headers,
      error: (behaviour) => behaviourError(behaviour, headers),
      streamErrorFrame,
      garbageFrames,
      faultStatus: 529,
      reply(content: FakeReplyContent): HttpAnswer {
        const answer = resolveAnswer(content, context);
        const ids = toolIds(answer);
        const blocks: unknown[] = answer.thinking.map(thinkingBlock);
        if (hasTextBlock(answer)) blocks.push({ type: 'text', text: answer.text });
        answer.toolCalls.forEach((call, i) => {
          blocks.push({ type: 'tool_use', id: ids[i], name: call.name, input: argumentsObject(call) });
        });
        return json(200, headers, {
          id: `msg_01${randomId(22)}`,
          type: 'message',
          role: 'assistant',
          model: answer.model,
          content: blocks,
          stop_reason: stopReason(answer.finish),
          stop_sequence: answer.finish === 'stop_sequence' ? (answer.stopSequence ?? null) : null,
          usage: { ...usageObject(answer, answer.usage.output), ...thinkingDetails(answer) },
        });
      },
      streamPlan(content: FakeReplyContent) {
        const answer = resolveAnswer(content, context);
        const ids = toolIds(answer);
        const frames: StreamFrame[] = [];
        const push = (name: string, data: unknown, isContent = false): void => {
          frames.push({ data: event(name, data), content: isContent });
        };
        push('message_start', {
          type: 'message_start',
          message: {
            id: `msg_01${randomId(22)}`,
            type: 'message',
            role: 'assistant',
            model: answer.model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: usageObject(answer, Math.min(1, answer.usage.output)),
          },
        });
        let index = 0;
        const ping = (): void => {
          if (index === 0) push('ping', { type: 'ping' });
        };
        for (const block of answer.thinking) {
          const wire = thinkingBlock(block);
          if (wire['type'] === 'redacted_thinking') {
            push('content_block_start', { type: 'content_block_start', index, content_block: wire }, true);
            ping();
          } else {
            // Both fields start empty and fill in through deltas; the signature comes last.
            push('content_block_start', {
              type: 'content_block_start',
              index,
              content_block: { type: 'thinking', thinking: '', signature: '' },
            });
            ping();
            const text = 'thinking' in block ? block.thinking : '';
            const chunks = ('chunks' in block ? block.chunks : undefined) ?? splitWords(text);
            for (const piece of chunks) {
              push(
                'content_block_delta',
                { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: piece } },
                true,
              );
            }
            push('content_block_delta', {
              type: 'content_block_delta',
              index,
              delta: { type: 'signature_delta', signature: wire['signature'] },
            });
          }
          push('content_block_stop', { type: 'content_block_stop', index });
          index++;
        }
        if (hasTextBlock(answer)) {
          push('content_block_start', {
            type: 'content_block_start',
            index,
            content_block: { type: 'text', text: '' },
          });
          ping();
          for (const piece of answer.chunks) {
            push(
              'content_block_delta',
              { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } },
              true,
            );
          }
          push('content_block_stop', { type: 'content_block_stop', index });
          index++;
        }
        answer.toolCalls.forEach((call, i) => {
          push('content_block_start', {
            type: 'content_block_start',
            index,
            content_block: { type: 'tool_use', id: ids[i], name: call.name, input: {} },
          });
          ping();
          push('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: '' },
          });
          for (const fragment of splitInto(argumentsJson(call), call.fragments ?? 3)) {
            push(
              'content_block_delta',
              {
                type: 'content_block_delta',
                index,
                delta: { type: 'input_json_delta', partial_json: fragment },
              },
              true,
            );
          }
          push('content_block_stop', { type: 'content_block_stop', index });
          index++;
        });
        const { input, cached, cacheWrite, output } = answer.usage;
        push('message_delta', {
          type: 'message_delta',
          delta: {
            stop_reason: stopReason(answer.finish),
            stop_sequence: answer.finish === 'stop_sequence' ? (answer.stopSequence ?? null) : null,
          },
          // Cumulative counts, as the API reports them at the end of a stream.
          usage: {
            input_tokens: Math.max(0, input - cached - cacheWrite),
            cache_creation_input_tokens: cacheWrite,
            cache_read_input_tokens: cached,
            output_tokens: output,
            ...thinkingDetails(answer),
          },
        });
        push('message_stop', { type: 'message_stop' });
        return {
          headers: { ...headers, 'content-type': SSE_CONTENT_TYPE, 'cache-control': 'no-cache' },
          frames,
        };
      },
    };
  }

  function checkAuth(call: IncomingCall, headers: Headers): HttpAnswer | undefined {
    const key = call.headers['x-api-key'];
    if (typeof key !== 'string' || key.length === 0) {
      return errorAnswer(401, headers, 'authentication_error', 'x-api-key header is required');
    }
    if (options.apiKey !== undefined && key !== options.apiKey) {
      return errorAnswer(401, headers, 'authentication_error', 'invalid x-api-key');
    }
    const version = call.headers['anthropic-version'];
    if (typeof version !== 'string' || version.length === 0) {
      return errorAnswer(400, headers, 'invalid_request_error', 'anthropic-version: header is required');
    }
    if (!versions.has(version)) {
      return errorAnswer(
        400,
        headers,
        'invalid_request_error',
        `anthropic-version: invalid version '${version}'`,
      );
    }
    return undefined;
  }

  /** The extended-thinking rules the API enforces, with its messages. */
  function checkThinking(body: Record<string, unknown>): string | undefined {
    const thinking = body['thinking'];
    if (isRecord(thinking) && thinking['type'] === 'enabled') {
      const budget = thinking['budget_tokens'];
      if (typeof budget !== 'number') return 'thinking.enabled.budget_tokens: Field required';
      if (budget < 1024) {
        return 'thinking.enabled.budget_tokens: Input should be greater than or equal to 1024';
      }
      if (typeof body['max_tokens'] === 'number' && budget >= body['max_tokens']) {
        return '`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size';
      }
    }
    const messages = asArray(body['messages']);
    for (let m = 0; m < messages.length; m++) {
      const message = messages[m];
      if (!isRecord(message)) continue;
      const content = asArray(message['content']);
      for (let b = 0; b < content.length; b++) {
        const block = content[b];
        if (isRecord(block) && block['type'] === 'thinking' && typeof block['signature'] !== 'string') {
          return `messages.${m}.content.${b}.thinking.signature: Field required`;
        }
      }
    }
    return undefined;
  }

  function modelEntry(id: string): Record<string, unknown> {
    return { type: 'model', id, display_name: id, created_at: '2025-05-14T00:00:00Z' };
  }

  return {
    route(call: IncomingCall): Routed {
      const headers: Headers = { ...staticHeaders, 'request-id': `req_011C${randomId(20)}` };
      const { method, path } = call;
      const isMessages = method === 'POST' && path === '/v1/messages';
      const isCount = method === 'POST' && path === '/v1/messages/count_tokens';
      const isModels = method === 'GET' && (path === '/v1/models' || path.startsWith('/v1/models/'));
      if (!isMessages && !isCount && !isModels) {
        return { answer: errorAnswer(404, headers, 'not_found_error', 'Not Found') };
      }
      const denied = checkAuth(call, headers);
      if (denied !== undefined) return { answer: denied };

      if (isModels) {
        if (path === '/v1/models') {
          const data = options.models.map(modelEntry);
          return {
            answer: json(200, headers, {
              data,
              has_more: false,
              first_id: options.models[0] ?? null,
              last_id: options.models[options.models.length - 1] ?? null,
            }),
          };
        }
        const id = decodeURIComponent(path.slice('/v1/models/'.length));
        if (known.has(id)) return { answer: json(200, headers, modelEntry(id)) };
        return { answer: errorAnswer(404, headers, 'not_found_error', `model: ${id}`) };
      }

      if (!call.bodyIsJson || !isRecord(call.json)) {
        return {
          answer: errorAnswer(
            400,
            headers,
            'invalid_request_error',
            'There was an error parsing the body of your request. Please make sure your request body is valid JSON.',
          ),
        };
      }
      const body = call.json;
      const model = asString(body['model']);
      if (model === undefined) {
        return { answer: errorAnswer(400, headers, 'invalid_request_error', 'model: Field required') };
      }
      if (!Array.isArray(body['messages'])) {
        return { answer: errorAnswer(400, headers, 'invalid_request_error', 'messages: Field required') };
      }
      if (isMessages && typeof body['max_tokens'] !== 'number') {
        return { answer: errorAnswer(400, headers, 'invalid_request_error', 'max_tokens: Field required') };
      }
      if (!known.has(model)) {
        return { answer: errorAnswer(404, headers, 'not_found_error', `model: ${model}`) };
      }
      const thinkingError = isMessages ? checkThinking(body) : undefined;
      if (thinkingError !== undefined) {
        return { answer: errorAnswer(400, headers, 'invalid_request_error', thinkingError) };
      }
      if (isCount) {
        const messages = asArray(body['messages']);
        let text = textOfContent(body['system']);
        for (const message of messages) {
          if (isRecord(message)) text += textOfContent(message['content']);
        }
        return { answer: json(200, headers, { input_tokens: estimatePromptTokens(text, messages.length) }) };
      }
      return { call: messagesCall(body, model, headers) };
    },
  };
}
