import { AppError, isAppError } from '@flowloom/errors';
import {
  type RedactAction,
  type RerouteAction,
  type ResponseFacts,
  type ResponseStatus,
  redactText,
} from '@flowloom/policy-engine';
import { type ChatRequest, type Message, UpstreamFailure, type Usage } from '@flowloom/providers';
import type { Route } from '../domain/routing.js';
import type { Router } from './router.js';

/** Masks what the redact actions match in every text of the conversation, before it leaves. */
export function redactChat(
  request: ChatRequest,
  actions: readonly RedactAction[],
): { request: ChatRequest; count: number } {
  if (actions.length === 0) return { request, count: 0 };
  let count = 0;
  const mask = (text: string): string => {
    const result = redactText(text, actions);
    count += result.count;
    return result.text;
  };
  const messages = request.messages.map((m): Message => {
    if (m.role === 'user')
      return { ...m, content: m.content.map((p) => (p.type === 'text' ? { ...p, text: mask(p.text) } : p)) };
    if (m.role === 'assistant') return m.content === null ? m : { ...m, content: mask(m.content) };
    return { ...m, content: mask(m.content) };
  });
  return { request: { ...request, messages }, count };
}

export function redactInputs(
  input: readonly string[],
  actions: readonly RedactAction[],
): { input: string[]; count: number } {
  let count = 0;
  const masked = input.map((text) => {
    const result = redactText(text, actions);
    count += result.count;
    return result.text;
  });
  return { input: masked, count };
}

/**
 * The route a reroute action asks for: another model (its own route), a deployment (by id, or as
 * `provider/model`), and/or a region among the route's deployments. Data residency fails closed: no
 * deployment in the region means no call.
 */
export function rerouted(router: Router, route: Route, action: RerouteAction, explain: string): Route {
  let next = action.model ? router.resolve(action.model) : route;
  if (action.deployment) {
    const wanted = action.deployment;
    const matching = next.deployments.filter((d) => d.id === wanted || `${d.provider}/${d.model}` === wanted);
    next = matching.length > 0 ? { ...next, deployments: matching } : router.resolve(wanted);
  }
  if (action.region) {
    const inRegion = next.deployments.filter((d) => d.region === action.region);
    if (inRegion.length === 0) {
      throw new AppError(
        'no_deployment_available',
        `${explain} requires region "${action.region}", and no deployment of ${next.alias} is there.`,
      );
    }
    next = { ...next, deployments: inRegion };
  }
  return next;
}

/**
 * What identifies a prompt for loop detection: the last message, and when it is a tool result, the
 * call it answers (an agent repeating the same call and getting the same answer is looping).
 */
export function promptText(request: ChatRequest): string {
  const messages = request.messages;
  const last = messages[messages.length - 1];
  if (!last) return '';
  switch (last.role) {
    case 'user':
      return last.content.map((p) => (p.type === 'text' ? p.text : `[${p.type}]`)).join('\n');
    case 'tool': {
      const call = [...messages]
        .reverse()
        .find((m) => m.role === 'assistant' && m.toolCalls?.some((c) => c.id === last.toolCallId));
      const made =
        call?.role === 'assistant'
          ? (call.toolCalls ?? []).map((c) => `${c.name}(${c.arguments})`).join(' ')
          : '';
      return `${made}\n${last.content}`;
    }
    default:
      return last.content ?? '';
  }
}

/** Tool-call rounds since the last user message: how deep an agent is into one task. */
export function toolCallDepth(request: ChatRequest): number {
  let depth = 0;
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const m = request.messages[i]!;
    if (m.role === 'user') break;
    if (m.role === 'assistant' && (m.toolCalls?.length ?? 0) > 0) depth++;
  }
  return depth;
}

const UPSTREAM_CODES = new Set([
  'upstream_error',
  'upstream_timeout',
  'upstream_bad_response',
  'no_deployment_available',
]);

/** Failures of the providers count towards error storms; the gateway's own refusals do not. */
export function isUpstreamFailure(error: unknown): boolean {
  if (isAppError(error)) return UPSTREAM_CODES.has(error.code);
  return error instanceof UpstreamFailure && error.kind !== 'aborted';
}

/** An answer as the post-call rules read it (`response.*`; `request.actual_tokens` follows from it). */
export function answerFacts(
  usage: Usage,
  costUsd: number,
  status: ResponseStatus,
  finishReason: string | undefined,
  usageEstimated: boolean,
): ResponseFacts {
  return {
    input_tokens: usage.inputTokens,
    output_tokens: usage.outputTokens,
    cached_input_tokens: usage.cachedInputTokens,
    cost: costUsd,
    status,
    finish_reason: finishReason ?? '',
    usage_estimated: usageEstimated,
  };
}
