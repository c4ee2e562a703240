import { z } from 'zod';
import type { PolicyAction } from './actions.js';

export type OnError = 'open' | 'closed';

export interface PolicyRule {
  readonly id: string;
  readonly description?: string;
  /** Higher runs first and wins ties between exclusive actions; default 0. */
  readonly priority: number;
  /** A CEL expression over request, caller, signals, budget and time. */
  readonly condition: string;
  readonly action: PolicyAction;
  /** Shown to a caller this rule refuses. */
  readonly message?: string;
  /** What an evaluation error means: closed = the rule matches, open = it does not. */
  readonly onError: OnError;
}

/** A validated, normalized policy document (defaults filled in, bare actions expanded). */
export interface PolicyDocument {
  readonly name: string;
  readonly description?: string;
  readonly rules: readonly PolicyRule[];
}

export const MAX_RULES = 1000;
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export const DOCUMENT_SCHEMA = z.strictObject({
  name: z.string().min(1).max(200),
  description: z.string().max(2000).optional(),
  rules: z.array(z.unknown()).max(MAX_RULES),
});

export const RULE_SCHEMA = z.strictObject({
  id: z.string().regex(ID_PATTERN, {
    error: 'must be 1-128 letters, digits, "_", ".", ":" or "-", starting with a letter or digit',
  }),
  description: z.string().max(2000).optional(),
  priority: z.int().min(-1_000_000).max(1_000_000).default(0),
  condition: z.string(),
  // Checked separately (validate-action.ts) for messages like `unknown action "blok"`.
  action: z.unknown(),
  message: z.string().min(1).max(1000).optional(),
  onError: z.enum(['open', 'closed']).optional(),
});
