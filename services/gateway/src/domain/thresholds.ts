import type { Threshold } from '@flowloom/contracts';

const PATH = String.raw`(signals\.(?:job|session|key)\.[a-z_]+|(?:signals|budget|request)\.[a-z_]+)`;
const NUMBER = String.raw`(-?\d+(?:\.\d+)?)`;
const OP = '(>=|<=|==|!=|>|<)';
const PATH_FIRST = new RegExp(`${PATH}\\s*${OP}\\s*${NUMBER}`, 'g');
const NUMBER_FIRST = new RegExp(`${NUMBER}\\s*${OP}\\s*${PATH}`, 'g');
const MIRROR: Readonly<Record<string, string>> = {
  '>': '<',
  '<': '>',
  '>=': '<=',
  '<=': '>=',
  '==': '==',
  '!=': '!=',
};

/**
 * The literal limits a condition compares numeric facts against (`signals.repeated_prompts >= 5`,
 * `2.0 < signals.spend_per_minute`, `signals.key.error_rate > 0.5`), so an intervention can show each signal next to its threshold.
 */
export function thresholdsOf(condition: string): Threshold[] {
  const out: Threshold[] = [];
  for (const m of condition.matchAll(PATH_FIRST))
    out.push({ path: m[1]!, operator: m[2]!, value: Number(m[3]) });
  for (const m of condition.matchAll(NUMBER_FIRST))
    out.push({ path: m[3]!, operator: MIRROR[m[2]!] ?? m[2]!, value: Number(m[1]) });
  return out;
}
