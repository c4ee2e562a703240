import { AppError } from '@flowloom/errors';
import {
  type CompiledPolicy,
  compilePolicy,
  type EvaluationInput,
  formatReplayReport,
  type ReplayReport,
  replayDecisions,
} from '@flowloom/policy-engine';
import { parseSince } from '../domain/rollout.js';
import type { DecisionStore } from '../ports/decision-store.js';
import type { PolicyRepository } from '../ports/policy-repository.js';

export interface ReplayRequest {
  name: string;
  /** The candidate version (id or prefix). */
  version: string;
  /** Default: the enforced (stable) version, else an empty policy that allows everything. */
  baseline?: string;
  /** `24h`, `30m`, `7d` or an ISO date; default 24h. */
  since?: string;
  /** Most recorded requests to replay; default 10,000, at most 100,000. */
  limit?: number;
  examples?: number;
}

export interface ReplayResult {
  report: ReplayReport;
  text: string;
  since: string;
  baseline: string | null;
  candidate: string;
}

/** What-if: the recorded traffic (decision inputs) evaluated against a candidate and a baseline. */
export class ReplayService {
  constructor(
    private readonly repo: PolicyRepository,
    private readonly decisions: DecisionStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async replay(request: ReplayRequest): Promise<ReplayResult> {
    const since = parseSince(request.since ?? '24h', this.now());
    const limit = Math.min(Math.max(1, request.limit ?? 10_000), 100_000);
    const candidate = await this.compiled(request.name, request.version);
    const deployment = await this.repo.currentDeployment(request.name);
    const baselineId = request.baseline ?? deployment?.stable ?? undefined;
    const baseline = baselineId
      ? await this.compiled(request.name, baselineId)
      : compileOrThrow({ name: request.name, rules: [] });
    const recorded = await this.decisions.inputsSince(since, limit);
    const report = replayDecisions(
      recorded.map((r) => ({ id: r.id, input: r.input as unknown as EvaluationInput })),
      baseline,
      candidate,
      { maxExamples: request.examples ?? 3 },
    );
    return {
      report,
      text: formatReplayReport(report),
      since: since.toISOString(),
      baseline: baselineId ? baseline.version : null,
      candidate: candidate.version,
    };
  }

  private async compiled(name: string, version: string): Promise<CompiledPolicy> {
    const stored = await this.repo.getVersion(name, version);
    if (!stored)
      throw new AppError('not_found', `Policy "${name}" has no version ${version}.`, { param: 'version' });
    return compileOrThrow(stored.document);
  }
}

function compileOrThrow(document: unknown): CompiledPolicy {
  const result = compilePolicy(document);
  if (!result.ok) throw new AppError('internal', 'A stored policy version no longer compiles.');
  return result.policy;
}
