/**
 * zod schema of a Gemini `GenerateContentRequest` as FlowLoom accepts it from Gemini clients. Google's
 * proto JSON parser takes both lowerCamelCase and the proto's snake_case names (its curl samples use
 * `system_instruction`, `inline_data`), so both are accepted for every field read here.
 */
import { z } from 'zod';
import { jsonObject, jsonValue } from '../../validation.js';

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function renameSnakeKeys(keys: string[]): (value: unknown) => unknown {
  return (value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const record: Record<string, unknown> = { ...value };
    for (const key of keys) {
      const alias = snake(key);
      if (alias !== key && record[key] === undefined && record[alias] !== undefined) {
        record[key] = record[alias];
        delete record[alias];
      }
    }
    return record;
  };
}

/** An object schema whose keys may also arrive in snake_case. */
function protoObject<Shape extends z.ZodRawShape>(shape: Shape) {
  return z.preprocess(renameSnakeKeys(Object.keys(shape)), z.object(shape));
}

const UNSUPPORTED_PART =
  'is not supported through FlowLoom; parts may hold text, inlineData, fileData, functionCall or functionResponse';

const partSchema = protoObject({
  text: z.string().optional(),
  thought: z.boolean().optional(),
  thoughtSignature: z.string().optional(),
  inlineData: protoObject({ mimeType: z.string().min(1), data: z.string().min(1) }).optional(),
  fileData: protoObject({ mimeType: z.string().optional(), fileUri: z.string().min(1) }).optional(),
  functionCall: z
    .object({ id: z.string().optional(), name: z.string().min(1), args: jsonObject.optional() })
    .optional(),
  functionResponse: z
    .object({ id: z.string().optional(), name: z.string().min(1), response: jsonObject.optional() })
    .optional(),
  executableCode: z.never({ error: `executableCode ${UNSUPPORTED_PART}` }).optional(),
  codeExecutionResult: z.never({ error: `codeExecutionResult ${UNSUPPORTED_PART}` }).optional(),
}).superRefine((part, context) => {
  const kinds: [string, unknown][] = [
    ['text', part.text],
    ['inlineData', part.inlineData],
    ['fileData', part.fileData],
    ['functionCall', part.functionCall],
    ['functionResponse', part.functionResponse],
  ];
  const present = kinds.filter(([, value]) => value !== undefined).map(([kind]) => kind);
  if (present.length !== 1) {
    context.addIssue({
      code: 'custom',
      message:
        present.length === 0
          ? 'a part must hold one of text, inlineData, fileData, functionCall, functionResponse'
          : `a part must hold exactly one kind of data, got ${present.join(' and ')}`,
    });
  }
});

export type GeminiRequestPart = z.infer<typeof partSchema>;

const contentSchema = protoObject({
  role: z.enum(['user', 'model'], { error: 'Please use a valid role: user, model.' }).optional(),
  parts: z.array(partSchema).min(1),
});

const functionDeclarationSchema = protoObject({
  name: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/, {
    error:
      'must start with a letter or an underscore, contain only a-z, A-Z, 0-9, underscores, dots, colons and dashes, and be at most 64 characters',
  }),
  description: z.string().optional(),
  parameters: jsonObject.optional(),
  parametersJsonSchema: jsonObject.optional(),
}).refine(
  (declaration) => declaration.parameters === undefined || declaration.parametersJsonSchema === undefined,
  {
    message: 'parameters and parametersJsonSchema are mutually exclusive',
    path: ['parametersJsonSchema'],
  },
);

const toolSchema = z.preprocess(
  renameSnakeKeys(['functionDeclarations']),
  z
    .looseObject({ functionDeclarations: z.array(functionDeclarationSchema).optional() })
    .superRefine((tool, context) => {
      // Built-in tools (googleSearch, codeExecution, urlContext, ...) run inside Gemini and cannot be
      // routed to another provider.
      for (const key of Object.keys(tool)) {
        if (key !== 'functionDeclarations') {
          context.addIssue({
            code: 'custom',
            path: [key],
            message: 'built-in Gemini tools are not supported through FlowLoom; use functionDeclarations',
          });
        }
      }
    }),
);

const generationConfigSchema = protoObject({
  maxOutputTokens: z.number().int().min(1).optional(),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().min(0).max(1).optional(),
  topK: z.number().int().min(0).optional(),
  stopSequences: z.array(z.string()).max(5).optional(),
  candidateCount: z.literal(1, { error: 'only one candidate is supported through FlowLoom' }).optional(),
  responseMimeType: z
    .enum(['text/plain', 'application/json'], {
      error: 'responseMimeType must be text/plain or application/json',
    })
    .optional(),
  responseSchema: jsonObject.optional(),
  responseJsonSchema: jsonValue.optional(),
  seed: z.number().int().optional(),
  thinkingConfig: protoObject({
    // -1 asks for dynamic thinking, 0 turns it off (on models that allow it).
    thinkingBudget: z.number().int().min(-1).optional(),
    // The REST enum is upper case; Google's samples also write it in lower case.
    thinkingLevel: z
      .preprocess(
        (value) => (typeof value === 'string' ? value.toUpperCase() : value),
        z.enum(['THINKING_LEVEL_UNSPECIFIED', 'MINIMAL', 'LOW', 'MEDIUM', 'HIGH']),
      )
      .optional(),
    includeThoughts: z.boolean().optional(),
  })
    .refine((config) => config.thinkingBudget === undefined || config.thinkingLevel === undefined, {
      message: 'thinkingBudget and thinkingLevel cannot be used together',
      path: ['thinkingLevel'],
    })
    .optional(),
});

export const geminiRequestSchema = protoObject({
  contents: z.array(contentSchema).min(1),
  systemInstruction: protoObject({
    role: z.string().optional(),
    parts: z.array(protoObject({ text: z.string() })),
  }).optional(),
  tools: z.array(toolSchema).optional(),
  toolConfig: protoObject({
    functionCallingConfig: protoObject({
      mode: z.enum(['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED']).optional(),
      allowedFunctionNames: z.array(z.string()).optional(),
    }).optional(),
  }).optional(),
  generationConfig: generationConfigSchema.optional(),
  cachedContent: z
    .never({ error: 'Gemini cached contents cannot be used through FlowLoom; send the contents instead' })
    .optional(),
});

export type GeminiRequestBody = z.infer<typeof geminiRequestSchema>;
