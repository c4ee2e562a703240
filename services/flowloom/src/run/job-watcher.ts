import type { DecisionRecord, Intervention } from '@flowloom/contracts';
import type { PolicyFinding } from './timeline.js';

/** Why a job is stopped at the gateway (GET /api/v1/jobs/{job}, or a job.changed event). */
export interface JobStopInfo {
  actor: string;
  reason: string;
  decisionId?: string;
  policy?: string;
  version?: string;
  rule?: string;
}

/** What a watcher learns about a job from the platform. */
export type JobObservation =
  /** A policy intervened in one of the job's requests, or in shadow/canary would have. `at`: epoch ms. */
  | { kind: 'finding'; finding: PolicyFinding; at?: number }
  /** The gateway refuses the job's requests: a policy (stop_job) or an admin stopped it. */
  | { kind: 'stopped'; stop: JobStopInfo; at?: number }
  /** The job's live signals as the gateway computes them. */
  | { kind: 'signals'; signals: Readonly<Record<string, number>> }
  /** Something this platform cannot tell (an older version without an endpoint); said once. */
  | { kind: 'limited'; what: string };

export interface JobWatch {
  /** Look now rather than at the next poll (e.g. a request was just refused). */
  poke(): void;
  /** Fetch the full record of a decision known only in part (a refusal message, a stop record). */
  explain?(decisionId: string): void;
  stop(): Promise<void>;
}

/**
 * Reads what the platform decides about one job: its policy findings and whether it is stopped.
 * Adapters: the admin API (a remote platform) and the event bus (the platform in this process).
 */
export interface JobWatcher {
  watch(job: string, observe: (observation: JobObservation) => void): JobWatch;
}

/** Several watchers as one (e.g. the API for stops, the bus for findings); duplicates are the supervisor's to fold. */
export function combineWatchers(...watchers: JobWatcher[]): JobWatcher {
  return {
    watch(job, observe) {
      const watches = watchers.map((w) => w.watch(job, observe));
      return {
        poke: () => {
          for (const w of watches) w.poke();
        },
        explain: (decisionId) => {
          for (const w of watches) w.explain?.(decisionId);
        },
        stop: async () => {
          await Promise.all(watches.map((w) => w.stop()));
        },
      };
    },
  };
}

type ActionLike = { type: string } & Record<string, unknown>;

/** The parameters of an action worth showing: "delay 250 ms", "to model x", "max_tokens 100". */
export function actionDetail(action: ActionLike | undefined): string | undefined {
  if (!action) return undefined;
  const n = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  const s = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  switch (action.type) {
    case 'throttle': {
      const delay = n(action.delayMs);
      if (delay !== undefined) return `delay ${delay} ms`;
      const wait = n(action.maxWaitMs);
      return `queued${wait !== undefined ? `, wait ≤ ${wait} ms` : ''}`;
    }
    case 'reroute': {
      const to = [
        s(action.model) && `model ${s(action.model)}`,
        s(action.deployment) && `deployment ${s(action.deployment)}`,
        s(action.region) && `region ${s(action.region)}`,
      ].filter(Boolean);
      return to.length > 0 ? `to ${to.join(', ')}` : undefined;
    }
    case 'cap_max_tokens':
      return n(action.value) !== undefined ? `max_tokens ${n(action.value)}` : undefined;
    default:
      return undefined;
  }
}

/**
 * An intervention event as a finding. The decision record of the same request, when known, supplies
 * the action's parameters (the intervention names only the action).
 */
export function findingOf(i: Intervention, decision?: DecisionRecord): PolicyFinding {
  const actions = [...(decision?.intendedActions ?? []), ...(decision?.actions ?? [])];
  const action = actions.find(
    (a) => a.policy === i.policy && a.ruleId === i.rule && a.action.type === i.action,
  )?.action;
  const detail = actionDetail(action);
  return {
    decisionId: i.decisionId,
    policy: i.policy,
    version: i.version,
    mode: i.mode,
    rule: i.rule,
    action: i.action,
    enforced: i.enforced,
    reason: i.reason,
    ...(i.signals ? { signals: i.signals } : {}),
    ...(i.thresholds ? { thresholds: i.thresholds } : {}),
    ...(detail ? { detail } : {}),
    ...(i.channel ? { channel: i.channel } : {}),
    ...(i.jobPolicy ? { jobPolicy: true } : {}),
  };
}

/**
 * A decision record (GET /api/v1/decisions/{id}) as a finding: what it did or would have done, by
 * which policy, version and rule, with the signals it saw. Undefined for a plain allow.
 */
export function findingOfDecision(d: DecisionRecord): PolicyFinding | undefined {
  if (!d.policy || !d.version) return undefined;
  const refused = d.verdict !== 'allow';
  const intended = d.intendedVerdict !== 'allow';
  const actions = refused || !intended ? d.actions : d.intendedActions;
  const first = actions[0];
  const action = refused ? d.verdict : intended ? d.intendedVerdict : first?.action.type;
  if (!action || action === 'allow') return undefined;
  const matching = actions.find((a) => a.action.type === action)?.action ?? first?.action;
  const detail = actionDetail(matching);
  return {
    decisionId: d.decisionId,
    policy: d.policy,
    version: d.version,
    mode: d.mode ?? 'enforce',
    rule: d.rule ?? first?.ruleId ?? null,
    action,
    enforced: d.enforced,
    reason: d.message ?? `rule "${d.rule ?? first?.ruleId ?? '-'}" matched`,
    ...(d.signals ? { signals: d.signals } : {}),
    ...(detail ? { detail } : {}),
  };
}

/** A stop by a policy as a finding (when no intervention event tells more). */
export function findingOfStop(stop: JobStopInfo): PolicyFinding | undefined {
  if (!stop.policy || !stop.decisionId) return undefined;
  return {
    decisionId: stop.decisionId,
    policy: stop.policy,
    version: stop.version ?? '',
    mode: 'enforce',
    rule: stop.rule ?? null,
    action: 'stop_job',
    enforced: true,
    reason: stop.reason,
  };
}

const REFUSAL =
  /^Refused by (?:job )?policy "(?<policy>[^"]+)" \(version (?<version>[0-9a-f]+), rule "(?<rule>[^"]*)"\): (?<reason>.*?)\.(?= Job "| API key | The request | Admin keys | Decision )/s;

/**
 * A gateway refusal's message (`policy_blocked`) as a finding: what a supervisor learns from the
 * refused request itself, before (or without) any API call. Undefined for other messages.
 */
export function findingOfRefusal(message: string, decisionId: string | undefined): PolicyFinding | undefined {
  const match = REFUSAL.exec(message);
  const g = match?.groups;
  if (!g || !decisionId) return undefined;
  const action = / Job "[^"]*" is stopped/.test(message)
    ? 'stop_job'
    : / API key \S+ is suspended/.test(message)
      ? 'suspend_key'
      : 'block';
  return {
    decisionId,
    policy: g.policy!,
    version: g.version!,
    mode: 'enforce',
    rule: g.rule ?? null,
    action,
    enforced: true,
    reason: g.reason!,
  };
}
