/**
 * One stated mapping between the three ways providers size a model's thinking:
 * OpenAI `reasoning_effort` (a level), Anthropic `thinking.budget_tokens` and Gemini `thinkingBudget`
 * (token budgets).
 *
 * Levels → budgets follow Google's documented translation of OpenAI's `reasoning_effort` for Gemini
 * (ai.google.dev/gemini-api/docs/openai: low 1,024, medium 8,192, high 24,576 thinking tokens, `none`
 * turns thinking off). `minimal` takes the low budget, since 1,024 is also Anthropic's smallest;
 * `xhigh` and `max` (newer OpenAI models), which Google does not map, take 32,768, the budget above
 * which Anthropic recommends batch processing. Budgets → levels is the inverse: the smallest level whose
 * budget covers it (never `max`, which only an OpenAI caller can ask for).
 */
import type { ReasoningConfig, ReasoningEffort } from './canonical.js';

type ThinkingEffort = Exclude<ReasoningEffort, 'none'>;

const BUDGET_BY_EFFORT: Readonly<Record<ThinkingEffort, number>> = {
  minimal: 1024,
  low: 1024,
  medium: 8192,
  high: 24_576,
  xhigh: 32_768,
  max: 32_768,
};

/** Anthropic rejects `budget_tokens` below this. */
export const ANTHROPIC_MIN_THINKING_BUDGET = 1024;

export function budgetForEffort(effort: ThinkingEffort): number {
  return BUDGET_BY_EFFORT[effort];
}

export function effortForBudget(budgetTokens: number): ThinkingEffort {
  if (budgetTokens <= BUDGET_BY_EFFORT.low) return 'low';
  if (budgetTokens <= BUDGET_BY_EFFORT.medium) return 'medium';
  if (budgetTokens <= BUDGET_BY_EFFORT.high) return 'high';
  return 'xhigh';
}

/** The configuration as a token budget; undefined when thinking is off or left to the model. */
export function reasoningBudget(config: ReasoningConfig): number | undefined {
  switch (config.type) {
    case 'budget':
      return config.budgetTokens;
    case 'effort':
      return config.effort === 'none' ? undefined : budgetForEffort(config.effort);
    case 'adaptive':
    case 'disabled':
      return undefined;
  }
}

/** True when the configuration asks for no thinking at all. */
export function reasoningDisabled(config: ReasoningConfig): boolean {
  return config.type === 'disabled' || (config.type === 'effort' && config.effort === 'none');
}
