/**
 * zod schema of a `POST /v1/messages` body as FlowLoom accepts it from Anthropic clients. It rejects what
 * the Messages API rejects (no `max_tokens`, no messages, a bad block type, a malformed tool) and what
 * FlowLoom cannot translate to other providers (server tools, documents, file sources), naming the field.
 */
import { z } from 'zod';
import type { CacheControl } from '../../canonical.js';
import { ANTHROPIC_MIN_THINKING_BUDGET } from '../../reasoning.js';
import { isJsonObject, jsonObject, jsonValue } from '../../validation.js';
import { ANTHROPIC_IMAGE_TYPES } from './wire.js';

// Kept whole (ttl and any newer member) so an Anthropic upstream receives exactly what the caller sent.
const cacheControl = z
  .custom<CacheControl>((value) => isJsonObject(value) && value['type'] === 'ephemeral', {
    error: 'expected {"type": "ephemeral"} with an optional ttl',
  })
  .nullable()
  .optional();

export const textBlockSchema = z.object({
  type: z.literal('text'),
  text: z.string(),
  cache_control: cacheControl,
});

const imageSourceSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('base64'),
    media_type: z.enum(ANTHROPIC_IMAGE_TYPES),
    data: z.string().min(1),
  }),
  z.object({ type: z.literal('url'), url: z.url({ protocol: /^https?$/ }) }),
]);

const imageBlockSchema = z.object({
  type: z.literal('image'),
  source: imageSourceSchema,
  cache_control: cacheControl,
});

const toolUseBlockSchema = z.object({
  type: z.literal('tool_use'),
  id: z.string().min(1),
  name: z.string().min(1),
  input: jsonObject,
  cache_control: cacheControl,
});

const toolResultBlockSchema = z.object({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: z
    .union([z.string(), z.array(z.discriminatedUnion('type', [textBlockSchema, imageBlockSchema]))])
    .optional(),
  is_error: z.boolean().optional(),
  cache_control: cacheControl,
});

// Thinking blocks come back in the history of extended-thinking conversations; Anthropic requires them
// unchanged (signature included) in a turn that used tools, so they are carried, not interpreted.
const thinkingBlockSchema = z.object({
  type: z.literal('thinking'),
  thinking: z.string(),
  signature: z.string(),
});
const redactedThinkingBlockSchema = z.object({ type: z.literal('redacted_thinking'), data: z.string() });

const thinkingDisplay = z.enum(['summarized', 'omitted']).nullable().optional();

const thinkingSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('enabled'),
    budget_tokens: z.number().int().min(ANTHROPIC_MIN_THINKING_BUDGET),
    display: thinkingDisplay,
  }),
  z.object({ type: z.literal('disabled') }),
  z.object({ type: z.literal('adaptive'), display: thinkingDisplay }),
]);

const userContentSchema = z.union([
  z.string(),
  z.array(z.discriminatedUnion('type', [textBlockSchema, imageBlockSchema, toolResultBlockSchema])),
]);

const assistantContentSchema = z.union([
  z.string(),
  z.array(
    z.discriminatedUnion('type', [
      textBlockSchema,
      toolUseBlockSchema,
      thinkingBlockSchema,
      redactedThinkingBlockSchema,
    ]),
  ),
]);

const messageSchema = z.discriminatedUnion('role', [
  z.object({ role: z.literal('user'), content: userContentSchema }),
  z.object({ role: z.literal('assistant'), content: assistantContentSchema }),
  // Mid-conversation system messages (the SDK's `MessageParam.role` allows 'system').
  z.object({ role: z.literal('system'), content: z.union([z.string(), z.array(textBlockSchema)]) }),
]);

const toolSchema = z.object({
  type: z
    .literal('custom', {
      error: 'server tools are not supported through FlowLoom; only custom tools (name, input_schema)',
    })
    .nullable()
    .optional(),
  name: z
    .string()
    .regex(/^[a-zA-Z0-9_-]{1,128}$/, { error: "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'" }),
  description: z.string().optional(),
  input_schema: z.object({ type: z.literal('object') }).catchall(jsonValue),
  cache_control: cacheControl,
});

const toolChoiceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({
    type: z.literal('tool'),
    name: z.string().min(1),
    disable_parallel_tool_use: z.boolean().optional(),
  }),
  z.object({ type: z.literal('none') }),
]);

export const anthropicRequestSchema = z.object({
  model: z.string().min(1),
  // The API accepts 0 to pre-warm its prompt cache; that is Anthropic-only and meaningless once routed.
  max_tokens: z.number().int().min(1),
  messages: z.array(messageSchema).min(1),
  system: z.union([z.string(), z.array(textBlockSchema)]).optional(),
  stop_sequences: z.array(z.string()).optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  stream: z.boolean().optional(),
  tools: z.array(toolSchema).optional(),
  tool_choice: toolChoiceSchema.optional(),
  metadata: z.object({ user_id: z.string().nullable().optional() }).optional(),
  thinking: thinkingSchema.optional(),
  cache_control: cacheControl,
  output_config: z
    .object({
      format: z
        .object({ type: z.literal('json_schema'), schema: jsonObject })
        .nullable()
        .optional(),
    })
    .optional(),
});

export type AnthropicRequestBody = z.infer<typeof anthropicRequestSchema>;
