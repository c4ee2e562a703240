import type { InputValue } from './cel/slots.js';
import type { Decision, RuleTrace } from './evaluate/decision.js';

/** The values one rule read, from its decision. */
export function ruleInputs(decision: Decision, trace: RuleTrace): Record<string, InputValue> {
  const out: Record<string, InputValue> = {};
  for (const path of trace.reads) out[path] = decision.inputs[path] ?? null;
  return out;
}

const show = (v: InputValue): string =>
  typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? `[${v.join(', ')}]` : String(v);

/**
 * A readable account of a decision: the outcome, then every rule that matched or failed, with the
 * values it read. For timelines and CLI output; the Decision itself is the record.
 */
export function explainDecision(decision: Decision): string[] {
  const { intended, effective } = decision;
  const head = `${decision.policy}@${decision.version.slice(0, 12)} [${decision.mode}${decision.canary === undefined ? '' : ` bucket ${decision.canary.bucket}`}]`;
  const by = intended.decidedBy === null ? 'no rule matched' : `rule ${intended.decidedBy}`;
  const lines = [
    decision.enforced || intended.verdict === effective.verdict
      ? `${head}: ${effective.verdict} (${by})`
      : `${head}: would ${intended.verdict} (${by}), not enforced: ${effective.verdict}`,
  ];
  if (intended.message !== undefined) lines.push(`  message: ${intended.message}`);
  for (const trace of decision.rules) {
    if (!trace.matched && trace.error === undefined) continue;
    const values = trace.reads.map((p) => `${p}=${show(decision.inputs[p] ?? null)}`).join(', ');
    const failure = trace.error === undefined ? '' : ` [error: ${trace.error}; onError ${trace.onError}]`;
    lines.push(
      `  ${trace.matched ? 'matched' : 'no match'} ${trace.id} -> ${trace.action}${failure}: ${values}`,
    );
  }
  return lines;
}
