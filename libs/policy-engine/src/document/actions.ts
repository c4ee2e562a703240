import { z } from 'zod';
import { BUILTIN_PATTERN_NAMES, type BuiltinPatternName } from '../redact/builtin-patterns.js';

export const ACTION_TYPES = [
  'allow',
  'block',
  'throttle',
  'reroute',
  'redact',
  'cap_max_tokens',
  'alert',
  'suspend_key',
  'stop_job',
] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

/** Actions that need no parameters may be written as a bare string: `action: block`. */
export const BARE_ACTIONS: ReadonlySet<ActionType> = new Set([
  'allow',
  'block',
  'alert',
  'suspend_key',
  'stop_job',
]);

export interface AllowAction {
  readonly type: 'allow';
}
export interface BlockAction {
  readonly type: 'block';
}
export interface SuspendKeyAction {
  readonly type: 'suspend_key';
}
export interface StopJobAction {
  readonly type: 'stop_job';
}
/**
 * Exactly one of `delayMs` (hold each request) or `queue: true` (at most `concurrency` requests of
 * the subject at once, 1 by default, across every gateway replica sharing Redis; the others wait in
 * line at most `maxWaitMs`).
 */
export interface ThrottleAction {
  readonly type: 'throttle';
  readonly delayMs?: number;
  readonly queue?: true;
  readonly maxWaitMs?: number;
  readonly concurrency?: number;
}
/** At least one of model, deployment, region. */
export interface RerouteAction {
  readonly type: 'reroute';
  readonly model?: string;
  readonly deployment?: string;
  readonly region?: string;
}
export interface CustomPattern {
  readonly regex: string;
  readonly flags?: string;
}
export type RedactionPattern = BuiltinPatternName | CustomPattern;
export interface RedactAction {
  readonly type: 'redact';
  readonly patterns: readonly RedactionPattern[];
  readonly replacement: string;
}
export interface CapMaxTokensAction {
  readonly type: 'cap_max_tokens';
  readonly value: number;
}
export interface AlertAction {
  readonly type: 'alert';
  readonly channel?: string;
}

export type PolicyAction =
  | AllowAction
  | BlockAction
  | ThrottleAction
  | RerouteAction
  | RedactAction
  | CapMaxTokensAction
  | AlertAction
  | SuspendKeyAction
  | StopJobAction;

/**
 * deny: refuses the request (block wins over everything); exclusive: one per decision;
 * combinable: added to whatever the exclusive outcome is.
 */
export type ActionClass = 'deny' | 'exclusive' | 'combinable';

const CLASS: Readonly<Record<ActionType, ActionClass>> = {
  block: 'deny',
  suspend_key: 'deny',
  stop_job: 'deny',
  allow: 'exclusive',
  throttle: 'exclusive',
  reroute: 'exclusive',
  redact: 'combinable',
  cap_max_tokens: 'combinable',
  alert: 'combinable',
};
export const actionClass = (type: ActionType): ActionClass => CLASS[type];

/** Among deny actions the heavier intervention is the one carried out (each also refuses the request). */
export const DENY_SEVERITY: Readonly<Partial<Record<ActionType, number>>> = {
  block: 1,
  suspend_key: 2,
  stop_job: 3,
};

/** Rules whose action stops traffic fail closed by default; the others fail open. */
export const defaultOnError = (type: ActionType): 'open' | 'closed' =>
  CLASS[type] === 'deny' ? 'closed' : 'open';

const MAX_MS = 600_000;
const shortText = z.string().min(1).max(200);

export const ACTION_SCHEMAS = {
  allow: z.strictObject({ type: z.literal('allow') }),
  block: z.strictObject({ type: z.literal('block') }),
  suspend_key: z.strictObject({ type: z.literal('suspend_key') }),
  stop_job: z.strictObject({ type: z.literal('stop_job') }),
  throttle: z
    .strictObject({
      type: z.literal('throttle'),
      delayMs: z.int().min(1).max(MAX_MS).optional(),
      queue: z.literal(true).optional(),
      maxWaitMs: z.int().min(1).max(MAX_MS).optional(),
      concurrency: z.int().min(1).max(10_000).optional(),
    })
    .superRefine((a, ctx) => {
      if ((a.delayMs === undefined) === (a.queue === undefined)) {
        ctx.addIssue({ code: 'custom', message: 'throttle needs exactly one of "delayMs" or "queue: true"' });
      } else if (a.queue === undefined) {
        for (const field of ['maxWaitMs', 'concurrency'] as const)
          if (a[field] !== undefined)
            ctx.addIssue({
              code: 'custom',
              path: [field],
              message: `"${field}" applies only with "queue: true"`,
            });
      }
    }),
  reroute: z
    .strictObject({
      type: z.literal('reroute'),
      model: shortText.optional(),
      deployment: shortText.optional(),
      region: shortText.optional(),
    })
    .superRefine((a, ctx) => {
      if (a.model === undefined && a.deployment === undefined && a.region === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: 'reroute needs at least one of "model", "deployment" or "region"',
        });
      }
    }),
  redact: z.strictObject({
    type: z.literal('redact'),
    // Entries are checked one by one (see validate-action.ts) to name the faulty one precisely.
    patterns: z.array(z.unknown()).min(1).max(32),
    replacement: z.string().max(100).default('[REDACTED]'),
  }),
  cap_max_tokens: z.strictObject({
    type: z.literal('cap_max_tokens'),
    value: z.int().min(1).max(10_000_000),
  }),
  alert: z.strictObject({ type: z.literal('alert'), channel: shortText.optional() }),
} as const satisfies Record<ActionType, z.ZodType>;

export const CUSTOM_PATTERN_SCHEMA = z.strictObject({
  regex: z.string().min(1).max(500),
  flags: z
    .string()
    .regex(/^(?!.*(.).*\1)[imsu]*$/, { error: 'flags may be any of "i", "m", "s", "u", each at most once' })
    .optional(),
});

export const isBuiltinPattern = (name: string): name is BuiltinPatternName =>
  (BUILTIN_PATTERN_NAMES as readonly string[]).includes(name);
