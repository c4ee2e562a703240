import { z } from 'zod';
import { REASONING_EFFORTS } from '../../canonical.js';

// The OpenAI Chat Completions request as documented; unknown fields are accepted and ignored, as
// OpenAI-compatible clients send many optional ones (logprobs, metadata, store, ...).

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const imagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.object({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() }),
});
const userPart = z.discriminatedUnion('type', [textPart, imagePart]);
const textOnlyContent = z.union([z.string(), z.array(textPart)]);

const toolCall = z.object({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.object({ name: z.string().min(1), arguments: z.string() }),
});

export const openAIMessage = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: textOnlyContent, name: z.string().optional() }),
  z.object({ role: z.literal('developer'), content: textOnlyContent, name: z.string().optional() }),
  z.object({
    role: z.literal('user'),
    content: z.union([z.string(), z.array(userPart)]),
    name: z.string().optional(),
  }),
  z.object({
    role: z.literal('assistant'),
    content: z.union([textOnlyContent, z.null()]).optional(),
    tool_calls: z.array(toolCall).optional(),
    name: z.string().optional(),
    refusal: z.string().nullable().optional(),
  }),
  z.object({ role: z.literal('tool'), content: textOnlyContent, tool_call_id: z.string().min(1) }),
]);

const jsonObject = z.record(z.string(), z.json());

export const openAIChatRequest = z.object({
  model: z.string().min(1, 'model is required'),
  messages: z.array(openAIMessage).min(1, 'messages must contain at least one message'),
  max_tokens: z.number().int().positive().nullable().optional(),
  max_completion_tokens: z.number().int().positive().nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  n: z.literal(1, 'only n=1 is supported').nullable().optional(),
  stop: z
    .union([z.string(), z.array(z.string()).max(4)])
    .nullable()
    .optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  tools: z
    .array(
      z.object({
        type: z.literal('function'),
        function: z.object({
          name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'tool names are 1-64 letters, digits, _ or -'),
          description: z.string().optional(),
          parameters: jsonObject.optional(),
          strict: z.boolean().nullable().optional(),
        }),
      }),
    )
    .optional(),
  tool_choice: z
    .union([
      z.enum(['auto', 'none', 'required']),
      z.object({ type: z.literal('function'), function: z.object({ name: z.string().min(1) }) }),
    ])
    .optional(),
  parallel_tool_calls: z.boolean().optional(),
  response_format: z
    .discriminatedUnion('type', [
      z.object({ type: z.literal('text') }),
      z.object({ type: z.literal('json_object') }),
      z.object({
        type: z.literal('json_schema'),
        json_schema: z.object({
          name: z.string().min(1),
          schema: jsonObject.optional(),
          strict: z.boolean().nullable().optional(),
        }),
      }),
    ])
    .optional(),
  user: z.string().optional(),
  seed: z.number().int().nullable().optional(),
  reasoning_effort: z
    .enum(REASONING_EFFORTS, { error: `reasoning_effort must be one of ${REASONING_EFFORTS.join(', ')}` })
    .nullable()
    .optional(),
});

export type OpenAIChatRequest = z.infer<typeof openAIChatRequest>;

export const openAIEmbeddingsRequest = z.object({
  model: z.string().min(1, 'model is required'),
  input: z.union([z.string(), z.array(z.string()).min(1, 'input must not be empty').max(2048)]),
  dimensions: z.number().int().positive().optional(),
  encoding_format: z.enum(['float', 'base64']).optional(),
  user: z.string().optional(),
});
