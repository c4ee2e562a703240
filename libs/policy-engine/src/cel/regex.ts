import { celEnv, isCelError, parse, plan } from '@bufbuild/cel';
import { CelEvalError } from './runtime.js';

/**
 * `matches` with a constant pattern. Semantics stay RE2's (linear time, so a hostile header cannot
 * make a pattern backtrack) by running @bufbuild/cel's own `matches`; but 0.6.1 recompiles the
 * RE2 program on every call (~35 µs), so results are memoized per subject. Subjects such as model,
 * team or owner names repeat heavily; a miss costs one RE2 run, never more.
 */

const MAX_MEMO_ENTRIES = 4096;
const MAX_MEMO_SUBJECT_LENGTH = 256;

const runMatches = plan(celEnv(), parse('s.matches(p)'));

export type RegexCompileResult = { readonly test: (subject: string) => boolean } | { readonly error: string };

export function compileRegex(pattern: string): RegexCompileResult {
  const probe = runMatches({ s: '', p: pattern });
  if (isCelError(probe)) return { error: probe.message };
  const memo = new Map<string, boolean>();
  const test = (subject: string): boolean => {
    const known = memo.get(subject);
    if (known !== undefined) return known;
    const result = runMatches({ s: subject, p: pattern });
    if (typeof result !== 'boolean')
      throw new CelEvalError(isCelError(result) ? result.message : 'matches failed');
    if (subject.length <= MAX_MEMO_SUBJECT_LENGTH) {
      if (memo.size >= MAX_MEMO_ENTRIES) memo.clear(); // bounded memory under high-cardinality subjects
      memo.set(subject, result);
    }
    return result;
  };
  return { test };
}
