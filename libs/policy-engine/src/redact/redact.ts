import type { RedactAction, RedactionPattern } from '../document/actions.js';
import { BUILTIN_PATTERNS } from './builtin-patterns.js';

/**
 * Applies redact actions to outgoing prompt text. Pure; compiled regexes are memoized per action
 * object (a compiled policy's actions live as long as the policy).
 */

export interface RedactionResult {
  readonly text: string;
  /** How many matches were replaced. */
  readonly count: number;
}

interface CompiledPattern {
  readonly regex: RegExp;
  readonly accept?: (match: string) => boolean;
}

const compiled = new WeakMap<RedactAction, readonly CompiledPattern[]>();

function compilePattern(pattern: RedactionPattern): CompiledPattern {
  if (typeof pattern === 'string') return BUILTIN_PATTERNS[pattern];
  return { regex: new RegExp(pattern.regex, `${pattern.flags ?? ''}g`) };
}

function patternsOf(action: RedactAction): readonly CompiledPattern[] {
  let patterns = compiled.get(action);
  if (patterns === undefined) {
    patterns = action.patterns.map(compilePattern);
    compiled.set(action, patterns);
  }
  return patterns;
}

export function redactText(text: string, actions: readonly RedactAction[]): RedactionResult {
  let out = text;
  let count = 0;
  for (const action of actions) {
    for (const { regex, accept } of patternsOf(action)) {
      regex.lastIndex = 0;
      out = out.replace(regex, (match) => {
        if (match === '' || (accept !== undefined && !accept(match))) return match;
        count++;
        return action.replacement;
      });
    }
  }
  return { text: out, count };
}

/** Throws SyntaxError when a custom pattern is not a valid regular expression. */
export function assertPatternCompiles(pattern: RedactionPattern): void {
  compilePattern(pattern);
}
