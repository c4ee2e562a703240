import {
  type CloudEvent,
  createEvent,
  type DecisionOutcome,
  type DecisionRecord,
  type Intervention,
  type JobChanged,
  POLICY_DECISION,
  POLICY_INTERVENTION,
  POLICY_JOB_CHANGED,
  type PolicyBundle,
  type SupervisorReport,
  uuidv7,
} from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import {
  type CompiledPolicy,
  compilePolicy,
  type EvaluationInput,
  formatDiagnostics,
  type Outcome,
  type Phase,
  type RedactAction,
  type RequestFacts,
  type RerouteAction,
  type ResponseFacts,
  type Rollout,
  SIGNAL_NAMES,
  SIGNAL_SCOPES,
  type SignalInput,
  type SignalValues,
} from '@flowloom/policy-engine';
import { type BudgetRule, budgetBuckets, MICROS } from '../domain/budget.js';
import type { JobStop } from '../domain/jobs.js';
import type { KeyRecord, KeySuspension } from '../domain/keys.js';
import {
  computeSignals,
  promptFingerprint,
  type SignalWindows,
  type WindowTotals,
} from '../domain/signals.js';
import { thresholdsOf } from '../domain/thresholds.js';
import type { LimitStore } from '../ports/limit-store.js';
import type { Outbox } from '../ports/outbox.js';
import { type SignalScope, type SignalStore, signalSubject, signalSubjects } from '../ports/signal-store.js';
import type { ThrottleSemaphore } from '../ports/throttle-semaphore.js';
import type { AlertSink } from './alert-dispatcher.js';
import { alertNotices } from './alert-notices.js';
import type { RequestContext } from './context.js';
import type { JobPolicies } from './job-policies.js';
import { subjectOf as limitSubjectOf } from './limits.js';
import {
  type ActivePolicy,
  decisionRecordOf,
  describeRule,
  type Evaluated,
  evaluateLanes,
  isIntervention,
  type Lane,
  projectOf,
} from './policy-decisions.js';
import { supervisorInterventionEvent } from './supervisor-interventions.js';
import { delay } from './throttle-queue.js';

export const POLICY_SOURCE = 'flowloom/gateway';
const DEFAULT_QUEUE_WAIT_MS = 30_000;

/** What the gate knows about a request before it is routed. */
export interface GateFacts {
  operation: 'chat' | 'embeddings';
  model: string;
  provider?: string;
  region?: string;
  stream: boolean;
  estimatedTokens: number;
  maxTokens?: number;
  /** Worst-case cost in USD (input plus the whole output allowance). */
  costEstimateUsd?: number;
  toolsCount?: number;
  /** Tool-call rounds since the last user message. */
  toolCallDepth?: number;
  /** The text that identifies the prompt for loop detection; read only when a policy needs it. */
  prompt?: () => string;
  headers?: Readonly<Record<string, string | string[] | undefined>>;
}

/** Per-request callbacks of the entry point (e.g. to set `x-flowloom-decision`). */
export interface GateHooks {
  onDecision?(decisionId: string): void;
}

export interface RequestOutcome {
  costUsd: number;
  tokens: number;
  /** The upstream failed (counts towards error storms). */
  failed: boolean;
  /** What the answer used and cost, when there was one (also a stream cut short): post-call rules read it. */
  answer?: ResponseFacts;
}

/** A request the policies let through, with what must be done to it. */
export interface Admission {
  readonly reroute: RerouteAction | undefined;
  readonly redactions: readonly RedactAction[];
  readonly capMaxTokens: number | undefined;
  /** How many matches the caller masked, for the decision record. */
  noteRedactions(count: number): void;
  /**
   * Records the outcome in the signals and frees a throttle queue slot; with an answer, evaluates
   * the post-call rules (their decision joins `takeEvents`, their action runs in the background).
   * Safe to call twice.
   */
  finish(outcome: RequestOutcome): Promise<void>;
  /** The decision's events, the first time only: appended with the request's own event. */
  takeEvents(): CloudEvent[];
}

/** A pre-call decision was taken: the request's own events and the entry point (a header) name it. */
function noteDecision(ctx: RequestContext, hooks: GateHooks, decisionId: string): void {
  ctx.decisionId = decisionId;
  hooks.onDecision?.(decisionId);
}

const NOTHING_TO_DO: Admission = {
  reroute: undefined,
  redactions: [],
  capMaxTokens: undefined,
  noteRedactions: () => {},
  finish: async () => {},
  takeEvents: () => [],
};

interface Needs {
  signals: boolean;
  /** Some rule reads `signals.<job|session|key>…`. */
  scopes: boolean;
  prompts: boolean;
  budget: boolean;
  headers: boolean;
}

/** What a key suspension needs (KeysAdmin.revoke). */
export interface KeySuspender {
  suspend(
    id: string,
    actor: { label: string; keyId: string | null },
    suspension: KeySuspension,
  ): Promise<unknown>;
}

export interface PolicyGateOptions {
  signals: SignalStore;
  windows: SignalWindows;
  outbox: Outbox;
  keys: KeySuspender;
  limits: LimitStore;
  budgets: readonly BudgetRule[];
  /** The queue of `throttle: { queue: true }`: shared by the replicas when it is Redis's. */
  throttle: ThrottleSemaphore;
  /**
   * What no caller hears of: a bundle (or a version in it) that does not compile (the previous one
   * stays active), or an action after the answer (suspend the key, stop the job) that failed.
   */
  onRejected?: (message: string) => void;
  /** Where enforced `alert` actions are delivered (in the background); only recorded without one. */
  alerts?: AlertSink;
  /** Job policies bound to keys (`flowloom run --policy`); without it, such a key's requests are refused. */
  jobPolicies?: JobPolicies;
  now?: () => number;
}

const CREDENTIAL_HEADER = /authorization|cookie|api[-_]?key|token|secret|password|signature/i;

/**
 * The inline policy decision. Evaluates the active bundle in this process (no network call per
 * request), applies what the decision says, and records every decision as an event through the
 * outbox. Bundles arrive from a PolicySource; a new one replaces the old at once.
 */
export class PolicyGate {
  private active: ActivePolicy[] = [];
  private revision = -1;
  private needs: Needs = { signals: false, scopes: false, prompts: false, budget: false, headers: false };
  private readonly compiled = new Map<string, CompiledPolicy>();
  /** Job policies as evaluated, per compiled version (JobPolicies decides how long one is kept). */
  private readonly jobLanes = new WeakMap<CompiledPolicy, JobLane>();
  private readonly jobLaneSet = new WeakSet<Lane>();
  private readonly combined = new WeakMap<
    JobLane,
    { base: readonly ActivePolicy[]; active: ActivePolicy[]; needs: Needs }
  >();
  private readonly now: () => number;

  constructor(private readonly options: PolicyGateOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Whether any policy is active (without one, requests carry no decision). */
  get enabled(): boolean {
    return this.active.length > 0;
  }

  /** The bundle in force: revision and each policy's versions and modes. */
  status(): {
    revision: number;
    policies: Array<{
      name: string;
      stable?: string;
      candidate?: { version: string; mode: string; percent?: number };
    }>;
  } {
    return {
      revision: this.revision,
      policies: this.active.map((p) => ({
        name: p.name,
        ...(p.stable ? { stable: p.stable.policy.version } : {}),
        ...(p.candidate
          ? {
              candidate: {
                version: p.candidate.policy.version,
                mode: p.candidate.rollout.mode,
                ...(p.candidate.rollout.mode === 'canary' ? { percent: p.candidate.rollout.percent } : {}),
              },
            }
          : {}),
      })),
    };
  }

  /** Installs a bundle; older revisions are ignored, versions that fail to compile keep their predecessor. */
  load(bundle: PolicyBundle): void {
    if (bundle.revision < this.revision) return;
    const previous = new Map(this.active.map((p) => [p.name, p]));
    const next: ActivePolicy[] = [];
    const used = new Set<string>();
    for (const p of bundle.policies) {
      const before = previous.get(p.name);
      const stable = p.stable
        ? (this.lane(p.name, 'stable', p.stable.version, p.stable.document, { mode: 'enforce' }) ??
          before?.stable)
        : undefined;
      const candidate = p.candidate
        ? (this.lane(
            p.name,
            'candidate',
            p.candidate.version,
            p.candidate.document,
            p.candidate.mode === 'canary'
              ? {
                  mode: 'canary',
                  percent: p.candidate.percent ?? 0,
                  ...(p.candidate.by ? { by: p.candidate.by } : {}),
                }
              : { mode: 'shadow' },
          ) ?? before?.candidate)
        : undefined;
      if (!stable && !candidate) continue;
      if (stable) used.add(stable.policy.version);
      if (candidate) used.add(candidate.policy.version);
      next.push({ name: p.name, ...(stable ? { stable } : {}), ...(candidate ? { candidate } : {}) });
    }
    for (const version of this.compiled.keys()) if (!used.has(version)) this.compiled.delete(version);
    this.active = next;
    this.revision = bundle.revision;
    this.needs = needsOf(next);
  }

  private lane(
    name: string,
    role: 'stable' | 'candidate',
    version: string,
    document: unknown,
    rollout: Rollout,
  ): Lane | undefined {
    let policy = this.compiled.get(version);
    if (!policy) {
      const result = compilePolicy(document);
      if (!result.ok) {
        this.options.onRejected?.(
          `policy "${name}" version ${version.slice(0, 12)} does not compile; keeping the previous one:\n${formatDiagnostics(result.errors)}`,
        );
        return undefined;
      }
      if (result.policy.version !== version) {
        this.options.onRejected?.(
          `policy "${name}": the document hashes to ${result.policy.version.slice(0, 12)}, not ${version.slice(0, 12)}; keeping the previous one`,
        );
        return undefined;
      }
      policy = result.policy;
      this.compiled.set(version, policy);
    }
    return laneOf(policy, role, rollout);
  }

  /**
   * The job policy bound to the request's key, ready to evaluate: compiled once per version (fetched
   * from the policy service on its first use only). One that cannot be had refuses the request: a job
   * policy only restricts, so evaluating without it would lift its restrictions (fail closed).
   */
  private async jobPolicyOf(key: KeyRecord): Promise<JobLane | undefined> {
    const version = key.policy;
    if (!version) return undefined;
    const jobs = this.options.jobPolicies;
    let policy: CompiledPolicy;
    try {
      if (!jobs) throw new Error('this gateway does not evaluate job policies');
      policy = jobs.cached(version) ?? (await jobs.get(version));
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new AppError(
        error instanceof AppError && error.code === 'unavailable' ? 'unavailable' : 'policy_blocked',
        `API key ${key.hint} runs under job policy ${short(version)}, which cannot be evaluated now (${why}); its requests are refused until it can be.`,
        { details: { version } },
      );
    }
    let bound = this.jobLanes.get(policy);
    if (!bound) {
      const lane = laneOf(policy, 'stable', { mode: 'enforce' });
      const entry: ActivePolicy = { name: policy.name, stable: lane };
      bound = { entry, needs: needsOf([entry]) };
      this.jobLanes.set(policy, bound);
      this.jobLaneSet.add(lane);
    }
    return bound;
  }

  /** The active bundle plus a job policy, and what they read, kept until the bundle changes. */
  private withActive(job: JobLane | undefined): { active: ActivePolicy[]; needs: Needs } | undefined {
    if (!job) return undefined;
    let combined = this.combined.get(job);
    if (combined?.base !== this.active) {
      combined = {
        base: this.active,
        active: [...this.active, job.entry],
        needs: mergeNeeds(this.needs, job.needs),
      };
      this.combined.set(job, combined);
    }
    return combined;
  }

  private isJobPolicy(lane: Lane): boolean {
    return this.jobLaneSet.has(lane);
  }

  /**
   * Decides on a request. Refusals (block, suspend_key, stop_job, a stopped job) are recorded, carried
   * out and thrown as `policy_blocked`; throttles wait here; everything else comes back in the Admission.
   */
  async admit(ctx: RequestContext, facts: GateFacts, hooks: GateHooks = {}): Promise<Admission> {
    const job = ctx.tags.job;
    // A job policy is evaluated after the active bundle: merged by the same rules (the strongest
    // refusal wins; at equal strength, and for throttles and reroutes, the first), so it can add
    // restrictions but never lift one of the active policies.
    const bound = ctx.key.policy ? this.withActive(await this.jobPolicyOf(ctx.key)) : undefined;
    const active = bound ? bound.active : this.active;
    if (active.length === 0) {
      if (job === undefined) return NOTHING_TO_DO;
      const stop = await this.options.signals.jobStop(job).catch(() => undefined);
      if (stop) await this.refuseStopped(ctx, facts, stop, hooks);
      return NOTHING_TO_DO;
    }

    const now = this.now();
    const subject = signalSubject(ctx.tags, ctx.key.id);
    // Its job, session and key, most specific (= `subject`) first: each has windows of its own.
    const scopes = signalSubjects(ctx.tags, ctx.key.id);
    const subjects = scopes.map((s) => s.subject);
    const needs = bound ? bound.needs : this.needs;
    let failure: string | undefined;
    let signals: SignalInput | undefined;
    let recordedSignals: Record<string, number> | undefined;
    let observed = false;
    // Read while the signals are: neither needs the other.
    const budgetRead = needs.budget
      ? this.budgetFacts(ctx, now).then(
          (facts) => ({ facts }),
          (error: unknown) => ({ error }),
        )
      : undefined;
    if (needs.signals || job !== undefined) {
      const fingerprint = needs.prompts && facts.prompt ? promptFingerprint(facts.prompt()) : undefined;
      try {
        const { totals, stop } = await this.options.signals.observe(subjects, now, fingerprint, job);
        observed = true;
        if (stop) await this.refuseStopped(ctx, facts, stop, hooks);
        if (needs.signals) {
          const depth = facts.toolCallDepth ?? 0;
          const windows = this.options.windows;
          const values = computeSignals(totals[0]!, windows, now, fingerprint, depth);
          recordedSignals = values;
          if (needs.scopes) {
            // signals.<scope>.* for the scopes the request has; recorded as "<scope>.<name>".
            const scoped: { -readonly [S in SignalScope]?: SignalValues } = {};
            recordedSignals = { ...values };
            for (let i = 0; i < scopes.length; i++) {
              const scope = scopes[i]!.scope;
              const v = i === 0 ? values : computeSignals(totals[i]!, windows, now, fingerprint, depth);
              scoped[scope] = v;
              for (const name of SIGNAL_NAMES) recordedSignals[`${scope}.${name}`] = v[name];
            }
            signals = { ...values, ...scoped };
          } else {
            signals = values;
          }
        }
      } catch (error) {
        if (error instanceof AppError) throw error;
        failure = `signals unavailable: ${(error as Error).message}`;
        // Rules that read signals now fail to evaluate, and their onError decides.
        signals = unavailableSignals(failure);
      }
    }
    let budget: EvaluationInput['budget'];
    const read = await budgetRead;
    if (read && 'error' in read)
      failure = `${failure ? `${failure}; ` : ''}budget unavailable: ${(read.error as Error).message}`;
    else budget = read?.facts;

    const request: RequestFacts = {
      model: facts.model,
      key: ctx.key.id,
      stream: facts.stream,
      estimated_tokens: facts.estimatedTokens,
      ...(facts.provider ? { provider: facts.provider } : {}),
      ...(facts.region ? { region: facts.region } : {}),
      ...(ctx.tags.job ? { job: ctx.tags.job } : {}),
      ...(ctx.tags.session ? { session: ctx.tags.session } : {}),
      ...(projectOf(ctx) ? { project: projectOf(ctx) } : {}),
      ...(facts.costEstimateUsd !== undefined ? { cost: facts.costEstimateUsd } : {}),
      ...(facts.maxTokens !== undefined ? { max_tokens: facts.maxTokens } : {}),
      ...(facts.toolsCount !== undefined ? { tools_count: facts.toolsCount } : {}),
      ...(needs.headers && facts.headers ? { headers: safeHeaders(facts.headers) } : {}),
    };
    const caller = {
      key_id: ctx.key.id,
      owner: ctx.key.owner,
      role: ctx.key.role,
      ...(ctx.key.team ? { team: ctx.key.team } : {}),
    };
    const input: EvaluationInput = {
      request,
      caller,
      now,
      ...(signals ? { signals } : {}),
      ...(budget ? { budget } : {}),
    };

    const { decisionId, record, effective, interventions } = this.decide(
      ctx,
      facts,
      active,
      input,
      'pre_call',
      now,
      recordedSignals,
    );
    noteDecision(ctx, hooks, decisionId);
    if (recordedSignals) record.signals = recordedSignals;
    if (failure) record.failure = failure;
    record.input = {
      request,
      caller,
      now,
      // Nested as the engine reads it (signals.key.…), so a replay sees the per-subject values too.
      ...(recordedSignals && signals ? { signals } : {}),
      ...(budget ? { budget: jsonBudget(budget) } : {}),
    };

    const verdict = effective.outcome.verdict;
    if (verdict === 'block' || verdict === 'suspend_key' || verdict === 'stop_job') {
      const by = effective.by!;
      const events: CloudEvent[] = [
        createEvent(POLICY_DECISION, POLICY_SOURCE, record, eventSubject(ctx)),
        ...interventions,
      ];
      const done = await this.carryOut(ctx, by, by.decision.effective, decisionId, now, events);
      const message = `Refused by ${this.isJobPolicy(by.lane) ? 'job policy' : 'policy'} "${done.policy}" (version ${short(done.version)}, rule "${done.rule}"): ${done.reason}.${done.effect} Decision ${decisionId} (GET /api/v1/decisions/${decisionId}).`;
      await this.options.outbox.append(events);
      throw new AppError('policy_blocked', message, {
        details: {
          decisionId,
          policy: by.name,
          version: by.decision.version,
          rule: effective.outcome.decidedBy,
          action: verdict,
        },
      });
    }

    let release: (() => void) | undefined;
    if (verdict === 'throttle') {
      const action = effective.actions[0]?.action;
      if (action?.type === 'throttle') {
        const by = effective.by!;
        const explain = `Throttled by policy "${by.name}" (version ${short(by.decision.version)}, rule "${effective.outcome.decidedBy}")`;
        try {
          if (action.delayMs !== undefined) await delay(action.delayMs, ctx.signal);
          else
            release = await this.options.throttle.acquire({
              subject,
              limit: action.concurrency ?? 1,
              maxWaitMs: action.maxWaitMs ?? DEFAULT_QUEUE_WAIT_MS,
              signal: ctx.signal,
              explain,
            });
        } catch (error) {
          await this.options.outbox.append([
            createEvent(POLICY_DECISION, POLICY_SOURCE, record, eventSubject(ctx)),
            ...interventions,
          ]);
          throw error;
        }
      }
    }

    let reroute: RerouteAction | undefined;
    const redactions: RedactAction[] = [];
    let capMaxTokens: number | undefined;
    for (const { action } of effective.actions) {
      if (action.type === 'reroute') reroute ??= action;
      else if (action.type === 'redact') redactions.push(action);
      else if (action.type === 'cap_max_tokens')
        capMaxTokens = Math.min(capMaxTokens ?? action.value, action.value);
    }

    let events: CloudEvent[] | undefined;
    let afterCall: CloudEvent[] = [];
    let finished = false;
    const store = this.options.signals;
    return {
      reroute,
      redactions,
      capMaxTokens,
      noteRedactions: (count) => {
        if (count > 0) record.redactions = (record.redactions ?? 0) + count;
      },
      finish: async (outcome) => {
        if (finished) return;
        finished = true;
        release?.();
        if (outcome.answer) {
          // Kept with the pre-call decision as well, so a replay can try any version's post-call rules on it.
          record.input = { ...record.input, response: outcome.answer };
          try {
            afterCall = this.afterCall(ctx, facts, active, { ...input, response: outcome.answer }, record);
          } catch (error) {
            // The caller has its answer: a fault here must not turn it into a failed request.
            this.options.onRejected?.(
              `post-call policy evaluation of request ${ctx.requestId} failed: ${error instanceof Error ? error.message : String(error)}`,
            );
          }
        }
        if (!observed) return;
        // The caller does not wait for it. Sent now, it reaches a shared store ahead of the next
        // request's observe on the same connection; settled() waits for it.
        this.track(
          store
            .record(subjects, this.now(), {
              costMicros: outcome.costUsd * MICROS,
              tokens: outcome.tokens,
              failed: outcome.failed,
            })
            .catch(() => {}),
        );
      },
      takeEvents: () => {
        if (events) return [];
        events = [
          createEvent(POLICY_DECISION, POLICY_SOURCE, record, eventSubject(ctx)),
          ...interventions,
          ...afterCall,
        ];
        return events;
      },
    };
  }

  /**
   * The rules that read the answer, once it is complete: evaluated inline like the pre-call ones, on
   * the same facts plus the answer, and recorded as a decision of its own (phase post_call, the same
   * request id, `follows` the pre-call decision) that goes out with the request's events. Suspending
   * the key or stopping the job runs in the background: the caller already has the answer.
   */
  private afterCall(
    ctx: RequestContext,
    facts: GateFacts,
    active: readonly ActivePolicy[],
    answered: EvaluationInput,
    before: DecisionRecord,
  ): CloudEvent[] {
    const late = active.filter(
      (p) =>
        p.stable?.policy.phases.includes('post_call') || p.candidate?.policy.phases.includes('post_call'),
    );
    if (late.length === 0) return [];
    const now = this.now();
    const { decisionId, record, effective, interventions } = this.decide(
      ctx,
      facts,
      late,
      { ...answered, now },
      'post_call',
      now,
      before.signals,
    );
    record.follows = before.decisionId;
    if (before.signals) record.signals = before.signals;
    record.input = { ...before.input, now };
    const events: CloudEvent[] = [
      createEvent(POLICY_DECISION, POLICY_SOURCE, record, eventSubject(ctx)),
      ...interventions,
    ];
    const by = effective.by;
    const verdict = effective.outcome.verdict;
    if (by && (verdict === 'suspend_key' || verdict === 'stop_job')) {
      const what = `policy "${by.name}" (version ${short(by.decision.version)}, rule "${effective.outcome.decidedBy}"): ${verdict} after the answer to request ${ctx.requestId} (decision ${decisionId})`;
      this.inBackground(what, async () => {
        const followUps: CloudEvent[] = [];
        await this.carryOut(ctx, by, by.decision.effective, decisionId, now, followUps);
        if (followUps.length > 0) await this.options.outbox.append(followUps);
      });
    }
    return events;
  }

  /** Evaluates one phase of the active policies into its decision record and intervention events. */
  private decide(
    ctx: RequestContext,
    facts: GateFacts,
    active: readonly ActivePolicy[],
    input: EvaluationInput,
    phase: Phase,
    now: number,
    signals: Record<string, number> | undefined,
  ) {
    const { evaluated, evaluationMicros } = evaluateLanes(active, input, phase);
    const decisionId = uuidv7(now);
    const { record, effective } = decisionRecordOf(
      ctx,
      facts.operation,
      facts.model,
      evaluated,
      decisionId,
      now,
      evaluationMicros,
    );
    // The record names the policy and version of every evaluation; a job policy's is marked as such.
    evaluated.forEach((e, i) => {
      const evaluation = record.evaluations[i];
      if (evaluation && this.isJobPolicy(e.lane)) evaluation.jobPolicy = true;
    });
    const interventions = evaluated
      .filter((e) => !e.superseded && isIntervention(e.decision.intended))
      .map((e) => this.interventionEvent(ctx, e, decisionId, signals));
    const alerts = this.options.alerts;
    if (alerts)
      for (const notice of alertNotices(ctx, evaluated, decisionId, signals, now)) alerts.notify(notice);
    return { decisionId, record, effective, interventions };
  }

  private readonly pending = new Set<Promise<void>>();

  /** Runs an action the caller must not wait for; a failure is reported with what to do by hand. */
  private inBackground(what: string, task: () => Promise<void>): void {
    this.track(
      task().catch((error: unknown) => {
        this.options.onRejected?.(
          `${what} failed: ${error instanceof Error ? error.message : String(error)}. The decision records the intent; carry it out by hand (revoke the key, or POST /api/v1/jobs/{job}/stop).`,
        );
      }),
    );
  }

  /** Keeps `work` in `pending` until it ends, so that settled() waits for it. */
  private track(work: Promise<void>): void {
    const run: Promise<void> = work.finally(() => this.pending.delete(run));
    this.pending.add(run);
  }

  /** Resolves once every action started after an answer has finished (for shutdown and tests). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /**
   * What a stop_job or suspend_key decision does to the job or the key, before the call (the request
   * is refused too) or after the answer (the next requests are): the same calls and the same events.
   */
  private async carryOut(
    ctx: RequestContext,
    by: Evaluated,
    outcome: Outcome,
    decisionId: string,
    now: number,
    events: CloudEvent[],
  ): Promise<{ policy: string; version: string; rule: string; reason: string; effect: string }> {
    const policy = by.name;
    const version = by.decision.version;
    const rule = outcome.decidedBy ?? '';
    const actor = `policy/${policy}@${short(version)} rule ${rule}`;
    const ruleMessage = by.lane.rules.get(rule)?.message;
    const reason = ruleMessage ?? describeRule(by.lane.rules.get(rule));
    let effect = '';
    if (outcome.verdict === 'stop_job') {
      const job = ctx.tags.job;
      if (job === undefined) {
        effect = ' The request carries no job id (x-flowloom-job), so only this request is refused.';
      } else {
        const stop: JobStop = { job, stoppedAt: now, reason, actor, decisionId, policy, version, rule };
        await this.options.signals.stopJob(stop);
        const changed: JobChanged = {
          job,
          status: 'stopped',
          actor,
          reason,
          decisionId,
          policy,
          version,
          rule,
        };
        events.push(createEvent(POLICY_JOB_CHANGED, POLICY_SOURCE, changed, `job/${job}`));
        effect = ` Job "${job}" is stopped: its requests are refused until an admin clears it (POST /api/v1/jobs/${encodeURIComponent(job)}/clear).`;
      }
    } else if (outcome.verdict === 'suspend_key') {
      if (ctx.key.role === 'admin') {
        effect = ' Admin keys are never suspended by a policy; only this request is refused.';
      } else {
        await this.options.keys.suspend(
          ctx.key.id,
          { label: actor, keyId: null },
          { by: actor, reason, decisionId, policy, version, rule },
        );
        effect = ` API key ${ctx.key.hint} is suspended until an admin resumes it (POST /api/v1/keys/${ctx.key.id}/resume, flowloom keys resume ${ctx.key.id}).`;
      }
    }
    return { policy, version, rule, reason, effect };
  }

  /** A request of a job stopped earlier: recorded as a decision of its own, naming the one that stopped it. */
  private async refuseStopped(
    ctx: RequestContext,
    facts: GateFacts,
    stop: JobStop,
    hooks: GateHooks,
  ): Promise<never> {
    const now = this.now();
    const decisionId = uuidv7(now);
    noteDecision(ctx, hooks, decisionId);
    const outcome: DecisionOutcome = {
      verdict: 'stop_job',
      decidedBy: stop.rule ?? null,
      actions: [{ ruleId: stop.rule ?? 'admin', action: { type: 'stop_job' } }],
      message: stop.reason,
    };
    const record: DecisionRecord = {
      decisionId,
      requestId: ctx.requestId,
      at: new Date(now).toISOString(),
      phase: 'pre_call',
      keyId: ctx.key.id,
      owner: ctx.key.owner,
      ...(projectOf(ctx) ? { project: projectOf(ctx) } : {}),
      job: stop.job,
      ...(ctx.tags.session ? { session: ctx.tags.session } : {}),
      api: ctx.api,
      operation: facts.operation,
      model: facts.model,
      ...(stop.policy ? { policy: stop.policy } : {}),
      ...(stop.version ? { version: stop.version } : {}),
      mode: 'enforce',
      rule: stop.rule ?? null,
      verdict: 'stop_job',
      actions: outcome.actions.map((a) => ({ ...a, policy: stop.policy ?? 'admin' })),
      intendedVerdict: 'stop_job',
      intendedActions: outcome.actions.map((a) => ({ ...a, policy: stop.policy ?? 'admin' })),
      enforced: true,
      message: stop.reason,
      evaluations: [],
      evaluationMicros: 0,
      ...(stop.decisionId ? { stoppedBy: stop.decisionId } : {}),
    };
    await this.options.outbox.append([
      createEvent(POLICY_DECISION, POLICY_SOURCE, record, eventSubject(ctx)),
    ]);
    const by = stop.policy
      ? `policy "${stop.policy}" (version ${short(stop.version ?? '')}, rule "${stop.rule ?? ''}")`
      : stop.actor;
    throw new AppError(
      'policy_blocked',
      `Job "${stop.job}" was stopped at ${new Date(stop.stoppedAt).toISOString()} by ${by}: ${stop.reason}. Its requests are refused until an admin clears it (POST /api/v1/jobs/${encodeURIComponent(stop.job)}/clear). Decision ${decisionId}.`,
      {
        details: {
          decisionId,
          job: stop.job,
          action: 'stop_job',
          ...(stop.decisionId ? { stoppedBy: stop.decisionId } : {}),
        },
      },
    );
  }

  private interventionEvent(
    ctx: RequestContext,
    e: Evaluated,
    decisionId: string,
    signals: Record<string, number> | undefined,
  ): CloudEvent<Intervention> {
    const outcome = e.decision.intended;
    const types = outcome.actions.map((a) => a.action.type);
    const action = outcome.verdict !== 'allow' ? outcome.verdict : (types[0] ?? 'allow');
    const rule = outcome.decidedBy ?? outcome.actions[0]?.ruleId ?? null;
    const lane = e.lane;
    const ruleDoc = rule === null ? undefined : lane.rules.get(rule);
    const alert = outcome.actions.find((a) => a.action.type === 'alert')?.action;
    const data: Intervention = {
      decisionId,
      requestId: ctx.requestId,
      keyId: ctx.key.id,
      ...(projectOf(ctx) ? { project: projectOf(ctx) } : {}),
      ...(ctx.tags.job ? { job: ctx.tags.job } : {}),
      ...(ctx.tags.session ? { session: ctx.tags.session } : {}),
      action,
      actions:
        outcome.verdict !== 'allow' && !types.includes(outcome.verdict) ? [outcome.verdict, ...types] : types,
      enforced: e.decision.enforced,
      mode: e.decision.mode,
      phase: e.decision.phase,
      policy: e.name,
      version: e.decision.version,
      rule,
      reason: outcome.message ?? ruleDoc?.message ?? describeRule(ruleDoc),
      ...(signals ? { signals } : {}),
      ...(rule !== null ? { thresholds: [...(lane.thresholds.get(rule) ?? [])] } : {}),
      ...(alert?.type === 'alert' && alert.channel ? { channel: alert.channel } : {}),
      ...(this.isJobPolicy(lane) ? { jobPolicy: true } : {}),
    };
    return createEvent(POLICY_INTERVENTION, POLICY_SOURCE, data, eventSubject(ctx));
  }

  private async budgetFacts(ctx: RequestContext, now: number): Promise<EvaluationInput['budget']> {
    const buckets = budgetBuckets(this.options.budgets, limitSubjectOf(ctx), new Date(now));
    let tightest: { remaining: number; limit: number } | undefined;
    const spends = await Promise.all(buckets.map((b) => this.options.limits.get(b.key)));
    for (const [i, b] of buckets.entries()) {
      const spent = spends[i]!;
      const remaining = (b.limit - spent) / MICROS;
      if (!tightest || remaining < tightest.remaining) tightest = { remaining, limit: b.limit / MICROS };
    }
    return tightest;
  }

  // ---- jobs (admin) ------------------------------------------------------------------------

  async jobStatus(job: string): Promise<{
    job: string;
    status: 'running' | 'stopped' | 'unknown';
    stop?: JobStop;
    signals?: Record<string, number>;
    firstSeenAt?: string;
    requestsInWindow?: number;
  }> {
    const now = this.now();
    const [stop, totals] = await Promise.all([
      this.options.signals.jobStop(job),
      this.options.signals.peek(`job/${job}`, now),
    ]);
    return {
      job,
      status: stop ? 'stopped' : totals ? 'running' : 'unknown',
      ...(stop ? { stop } : {}),
      ...(totals ? windowView(totals, this.options.windows, now) : {}),
    };
  }

  /** Records an intervention a supervisor made on the job's process itself (see supervisorInterventionEvent). */
  async recordSupervisorIntervention(
    job: string,
    report: SupervisorReport,
    actor: string,
    requestId: string,
  ): Promise<Intervention> {
    const event = supervisorInterventionEvent(POLICY_SOURCE, job, report, {
      actor,
      requestId,
      decisionId: uuidv7(),
    });
    await this.options.outbox.append([event]);
    return event.data;
  }

  async stopJob(job: string, reason: string, actor: string): Promise<JobStop> {
    const stop: JobStop = { job, stoppedAt: this.now(), reason, actor };
    await this.options.signals.stopJob(stop);
    const changed: JobChanged = { job, status: 'stopped', actor, reason };
    await this.options.outbox.append([createEvent(POLICY_JOB_CHANGED, POLICY_SOURCE, changed, `job/${job}`)]);
    return stop;
  }

  async clearJob(job: string, actor: string): Promise<JobStop | undefined> {
    const cleared = await this.options.signals.clearJob(job);
    if (cleared) {
      const changed: JobChanged = {
        job,
        status: 'cleared',
        actor,
        reason: `cleared; it had been stopped: ${cleared.reason}`,
        ...(cleared.decisionId ? { decisionId: cleared.decisionId } : {}),
      };
      await this.options.outbox.append([
        createEvent(POLICY_JOB_CHANGED, POLICY_SOURCE, changed, `job/${job}`),
      ]);
    }
    return cleared;
  }
}

function windowView(totals: WindowTotals, windows: SignalWindows, now: number) {
  const values = computeSignals(totals, windows, now, undefined, 0);
  const { repeated_prompts: _r, tool_call_depth: _t, ...signals } = values;
  return {
    signals,
    firstSeenAt: new Date(totals.firstSeenAt).toISOString(),
    requestsInWindow: totals.requests,
  };
}

/** Events of a request are grouped by job, else session, else key (as the gateway's other events). */
function eventSubject(ctx: RequestContext): string {
  return signalSubject(ctx.tags, ctx.key.id);
}

function jsonBudget(b: NonNullable<EvaluationInput['budget']>): { remaining: number; limit: number } {
  return { remaining: b.remaining, limit: b.limit };
}

/** A job policy as the gate evaluates it: its lane (enforced) and the inputs its rules read. */
interface JobLane {
  readonly entry: ActivePolicy;
  readonly needs: Needs;
}

function laneOf(policy: CompiledPolicy, role: Lane['role'], rollout: Rollout): Lane {
  const rules = new Map(policy.document.rules.map((r) => [r.id, r]));
  const thresholds = new Map(policy.document.rules.map((r) => [r.id, thresholdsOf(r.condition)]));
  return { role, policy, rollout, rules, thresholds };
}

function mergeNeeds(a: Needs, b: Needs): Needs {
  return {
    signals: a.signals || b.signals,
    scopes: a.scopes || b.scopes,
    prompts: a.prompts || b.prompts,
    budget: a.budget || b.budget,
    headers: a.headers || b.headers,
  };
}

function needsOf(active: readonly ActivePolicy[]): Needs {
  const needs: Needs = { signals: false, scopes: false, prompts: false, budget: false, headers: false };
  for (const p of active) {
    for (const lane of [p.stable, p.candidate]) {
      if (!lane) continue;
      for (const rule of lane.policy.rules) {
        for (const path of rule.condition.reads) {
          if (path.startsWith('signals.')) needs.signals = true;
          if (SCOPED_PATH.test(path)) needs.scopes = true;
          if (path.startsWith('signals.') && path.endsWith('.repeated_prompts')) needs.prompts = true;
          if (path.startsWith('budget.')) needs.budget = true;
          if (path.startsWith('request.headers')) needs.headers = true;
        }
      }
    }
  }
  return needs;
}

const SCOPED_PATH = new RegExp(`^signals\\.(${SIGNAL_SCOPES.join('|')})(\\.|$)`);

function unavailableSignals(message: string): SignalInput {
  const failing = (): Record<string, number> => {
    const values = {} as Record<string, number>;
    for (const name of SIGNAL_NAMES)
      Object.defineProperty(values, name, {
        enumerable: true,
        get: () => {
          throw new Error(message);
        },
      });
    return values;
  };
  const values: Record<string, unknown> = failing();
  for (const scope of SIGNAL_SCOPES) values[scope] = failing();
  return values as SignalInput;
}

function safeHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || CREDENTIAL_HEADER.test(name)) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

const short = (version: string): string => version.slice(0, 12);
