import {
  type CloudEvent,
  type DecisionRecord,
  type Intervention,
  interventionSchema,
  POLICY_INTERVENTION,
  type PolicyEvaluation,
} from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import { type CompiledPolicy, compilePolicy, type Phase } from '@flowloom/policy-engine';
import type { DecisionFilter, DecisionStore } from '../ports/decision-store.js';
import type { PolicyRepository } from '../ports/policy-repository.js';

export interface RuleView {
  id: string;
  priority: number;
  action: string;
  matched: boolean;
  error?: string;
  onError: 'open' | 'closed';
  /** The input values this rule's condition read. */
  inputs: Record<string, unknown>;
}

export type EvaluationView = PolicyEvaluation & { rules?: RuleView[] };
export type DecisionView = Omit<DecisionRecord, 'evaluations'> & {
  evaluations: EvaluationView[];
  /** A readable account: the outcome, then every rule that matched or failed with the values it read. */
  explanation: string[];
};

const MAX_COMPILED = 64;

/** Stores the gateways' decision events and shows a decision with every rule it evaluated. */
export class DecisionsService {
  private readonly compiled = new Map<string, CompiledPolicy>();

  constructor(
    private readonly store: DecisionStore,
    private readonly repo: PolicyRepository,
  ) {}

  /**
   * Consumes decision and intervention events (redeliveries are stored once), written in one
   * statement per kind. A malformed event is skipped, with the reason returned, rather than retried
   * for ever; a storage failure throws so the bus redelivers the batch.
   */
  async ingest(events: readonly CloudEvent[]): Promise<{ stored: number; skipped: string[] }> {
    const records: DecisionRecord[] = [];
    const interventions: Array<{ eventId: string; at: Date; intervention: Intervention }> = [];
    const skipped: string[] = [];
    for (const event of events) {
      if (event.type === POLICY_INTERVENTION) {
        const intervention = interventionSchema.safeParse(event.data);
        if (intervention.success)
          interventions.push({
            eventId: event.id,
            at: new Date(event.time),
            intervention: intervention.data,
          });
        else skipped.push(`intervention event ${event.id} is malformed: ${intervention.error.message}`);
        continue;
      }
      // Decisions come one per request from our own gateways: a structural check here, the full
      // schema in the tests, keeps the consumer cheap.
      const record = event.data as Partial<DecisionRecord> | null;
      if (
        typeof record?.decisionId !== 'string' ||
        typeof record.requestId !== 'string' ||
        typeof record.at !== 'string' ||
        typeof record.verdict !== 'string' ||
        typeof record.intendedVerdict !== 'string' ||
        !Array.isArray(record.evaluations)
      )
        skipped.push(`decision event ${event.id} is malformed`);
      else records.push(record as DecisionRecord);
    }
    if (records.length > 0) await this.store.saveMany(records);
    if (interventions.length > 0) await this.store.saveInterventions(interventions);
    return { stored: records.length + interventions.length, skipped };
  }

  async get(id: string): Promise<DecisionView> {
    const record = await this.store.get(id);
    if (!record) {
      throw new AppError(
        'not_found',
        `No decision ${id}. Decisions appear here a moment after the request (they travel as events).`,
        { param: 'id' },
      );
    }
    return this.view(record);
  }

  async list(filter: DecisionFilter): Promise<DecisionRecord[]> {
    return this.store.list(filter);
  }

  /** A job's interventions (shadow and canary findings included), for supervisors and timelines. */
  async interventions(
    job: string,
    after: string | undefined,
    limit: number,
  ): Promise<{ data: Array<Intervention & { at: string }>; next: string | null }> {
    const data = await this.store.interventions(job, after, limit);
    return { data, next: data.length >= limit ? (data.at(-1)?.decisionId ?? null) : null };
  }

  async view(record: DecisionRecord): Promise<DecisionView> {
    // A record evaluated one phase: before the call (also records made before phases existed), or after the answer.
    const phase = record.phase ?? 'pre_call';
    const evaluations = await Promise.all(record.evaluations.map((e) => this.expand(e, phase)));
    return { ...record, evaluations, explanation: explain(record, evaluations) };
  }

  /** Every rule of the version's phase in evaluation order, rebuilt from its (content-addressed) document. */
  private async expand(evaluation: PolicyEvaluation, phase: Phase): Promise<EvaluationView> {
    const policy = await this.policyOf(evaluation.policy, evaluation.version);
    if (!policy) return evaluation;
    const matched = new Set(evaluation.matched);
    const errors = new Map(evaluation.errors.map((e) => [e.ruleId, e.message]));
    const rules = policy.rules
      .filter((c) => c.phase === phase)
      .map((c) => {
        const inputs: Record<string, unknown> = {};
        for (const path of c.condition.reads) inputs[path] = evaluation.inputs[path] ?? null;
        const error = errors.get(c.rule.id);
        return {
          id: c.rule.id,
          priority: c.rule.priority,
          action: c.rule.action.type,
          matched: matched.has(c.rule.id),
          ...(error !== undefined ? { error } : {}),
          onError: c.rule.onError,
          inputs,
        };
      });
    return { ...evaluation, rules };
  }

  private async policyOf(name: string, version: string): Promise<CompiledPolicy | undefined> {
    const cached = this.compiled.get(version);
    if (cached) return cached;
    const stored = await this.repo.getVersion(name, version);
    if (!stored) return undefined;
    const result = compilePolicy(stored.document);
    if (!result.ok) return undefined;
    if (this.compiled.size >= MAX_COMPILED) this.compiled.delete(this.compiled.keys().next().value ?? '');
    this.compiled.set(version, result.policy);
    return result.policy;
  }
}

const show = (v: unknown): string =>
  typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? `[${v.join(', ')}]` : String(v);

function explain(record: DecisionRecord, evaluations: readonly EvaluationView[]): string[] {
  const lines: string[] = [];
  if (record.stoppedBy) {
    lines.push(
      `refused: job ${record.job} was stopped by decision ${record.stoppedBy} (${record.message ?? ''})`,
    );
    return lines;
  }
  const enforced = record.enforced
    ? record.verdict
    : `${record.verdict} (would ${record.intendedVerdict}; not enforced)`;
  const late = record.phase === 'post_call' ? ' after the answer' : '';
  const byJobPolicy = evaluations.some(
    (e) => e.jobPolicy && e.policy === record.policy && e.version === record.version,
  );
  lines.push(
    `${record.policy ?? 'policy'}@${(record.version ?? '').slice(0, 12)} [${record.mode ?? 'enforce'}${byJobPolicy ? ', job policy' : ''}]${late}: ${enforced}${record.rule ? ` by rule ${record.rule}` : ''}`,
  );
  if (record.message) lines.push(`  message: ${record.message}`);
  if (record.failure) lines.push(`  failure: ${record.failure}`);
  for (const e of evaluations) {
    for (const rule of e.rules ?? []) {
      if (!rule.matched && rule.error === undefined) continue;
      const values = Object.entries(rule.inputs)
        .map(([k, v]) => `${k}=${show(v)}`)
        .join(', ');
      const failed = rule.error === undefined ? '' : ` [error: ${rule.error}; onError ${rule.onError}]`;
      lines.push(
        `  ${e.policy}@${e.version.slice(0, 12)} [${e.mode}${e.jobPolicy ? ', job policy' : ''}] ${rule.matched ? 'matched' : 'no match'} ${rule.id} -> ${rule.action}${failed}: ${values}`,
      );
    }
  }
  return lines;
}
