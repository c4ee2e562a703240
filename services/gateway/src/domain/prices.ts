import type { Usage } from '@flowloom/providers';

/** USD per million tokens. */
export interface Price {
  input: number;
  output: number;
  /** Input read from the provider's prompt cache. */
  cachedInput?: number;
  /** Input written to the prompt cache for five minutes (Anthropic bills it above the input rate). */
  cacheWriteInput?: number;
  /** Input written to the prompt cache for one hour; the five-minute write rate when absent. */
  cacheWrite1hInput?: number;
}

/**
 * List prices shipped with FlowLoom (USD per 1M tokens, public price pages, 2025). Override or extend
 * them under `prices:` in flowloom.yaml, or per deployment; dated model names match by prefix.
 */
export const DEFAULT_PRICES: Readonly<Record<string, Price>> = {
  'gpt-4o': { input: 2.5, output: 10, cachedInput: 1.25 },
  'gpt-4o-mini': { input: 0.15, output: 0.6, cachedInput: 0.075 },
  'gpt-4.1': { input: 2, output: 8, cachedInput: 0.5 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6, cachedInput: 0.1 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4, cachedInput: 0.025 },
  'gpt-5': { input: 1.25, output: 10, cachedInput: 0.125 },
  'gpt-5-mini': { input: 0.25, output: 2, cachedInput: 0.025 },
  o3: { input: 2, output: 8, cachedInput: 0.5 },
  'o4-mini': { input: 1.1, output: 4.4, cachedInput: 0.275 },
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
  // Anthropic: cache reads 0.1×, 5-minute cache writes 1.25× and 1-hour writes 2× the input rate.
  'claude-3-5-haiku': {
    input: 0.8,
    output: 4,
    cachedInput: 0.08,
    cacheWriteInput: 1,
    cacheWrite1hInput: 1.6,
  },
  'claude-3-5-sonnet': {
    input: 3,
    output: 15,
    cachedInput: 0.3,
    cacheWriteInput: 3.75,
    cacheWrite1hInput: 6,
  },
  'claude-3-7-sonnet': {
    input: 3,
    output: 15,
    cachedInput: 0.3,
    cacheWriteInput: 3.75,
    cacheWrite1hInput: 6,
  },
  'claude-sonnet-4': { input: 3, output: 15, cachedInput: 0.3, cacheWriteInput: 3.75, cacheWrite1hInput: 6 },
  'claude-opus-4': { input: 15, output: 75, cachedInput: 1.5, cacheWriteInput: 18.75, cacheWrite1hInput: 30 },
  'claude-haiku-4-5': { input: 1, output: 5, cachedInput: 0.1, cacheWriteInput: 1.25, cacheWrite1hInput: 2 },
  'gemini-2.0-flash': { input: 0.1, output: 0.4, cachedInput: 0.025 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5, cachedInput: 0.075 },
  'gemini-2.5-pro': { input: 1.25, output: 10, cachedInput: 0.31 },
  'flowloom-local': { input: 0, output: 0 },
};

/** Finds a model's price: exact name first, then the longest known prefix (`gpt-4o-2024-08-06` → `gpt-4o`). */
export function findPrice(model: string, table: Readonly<Record<string, Price>>): Price | undefined {
  if (Object.hasOwn(table, model)) return table[model];
  let best: string | undefined;
  for (const name of Object.keys(table)) {
    if (model.startsWith(name) && (best === undefined || name.length > best.length)) best = name;
  }
  return best === undefined ? undefined : table[best];
}

/**
 * Cost in USD. Input splits into cache reads, one-hour and five-minute cache writes and the rest, each at
 * its own rate (falling back to the next cheaper one the model lists, then the input rate); reasoning
 * tokens are part of the output and cost the output rate.
 */
export function costOf(usage: Usage, price: Price | undefined): number {
  if (!price) return 0;
  const cached = Math.min(usage.cachedInputTokens, usage.inputTokens);
  const written = Math.min(usage.cacheWriteTokens ?? 0, usage.inputTokens - cached);
  const writtenForAnHour = Math.min(usage.cacheWrite1hTokens ?? 0, written);
  const fresh = usage.inputTokens - cached - written;
  const writeRate = price.cacheWriteInput ?? price.input;
  const micro =
    fresh * price.input +
    cached * (price.cachedInput ?? price.input) +
    (written - writtenForAnHour) * writeRate +
    writtenForAnHour * (price.cacheWrite1hInput ?? writeRate) +
    usage.outputTokens * price.output;
  return micro / 1_000_000;
}
