import type { AlertNotice } from '../domain/alerts.js';
import { signalSubject } from '../ports/signal-store.js';
import type { RequestContext } from './context.js';
import { describeRule, type Evaluated, projectOf } from './policy-decisions.js';

/**
 * The alerts a phase's decision carries out: each `alert` action of an enforced evaluation. Shadow
 * versions, and canary versions for subjects outside the canary, only record what they would have
 * sent (their intervention event says so); nothing is delivered for them.
 */
export function alertNotices(
  ctx: RequestContext,
  evaluated: readonly Evaluated[],
  decisionId: string,
  signals: Readonly<Record<string, number>> | undefined,
  now: number,
): AlertNotice[] {
  const notices: AlertNotice[] = [];
  for (const e of evaluated) {
    const d = e.decision;
    if (!d.enforced || e.superseded) continue;
    for (const { ruleId, action } of d.effective.actions) {
      if (action.type !== 'alert') continue;
      const rule = e.lane.rules.get(ruleId);
      const reads = d.rules.find((r) => r.id === ruleId)?.reads ?? [];
      const project = projectOf(ctx);
      notices.push({
        channel: action.channel,
        policy: e.name,
        version: d.version,
        rule: ruleId,
        mode: d.mode,
        phase: d.phase,
        decisionId,
        requestId: ctx.requestId,
        keyId: ctx.key.id,
        ...(project ? { project } : {}),
        ...(ctx.tags.job ? { job: ctx.tags.job } : {}),
        ...(ctx.tags.session ? { session: ctx.tags.session } : {}),
        subject: signalSubject(ctx.tags, ctx.key.id),
        explanation: rule?.message ?? describeRule(rule),
        ...(signals ? { signals } : {}),
        inputs: Object.fromEntries(reads.map((path) => [path, d.inputs[path] ?? null])),
        thresholds: e.lane.thresholds.get(ruleId) ?? [],
        at: now,
      });
    }
  }
  return notices;
}
