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
import { policyOfVersion } from './policies.js';

export interface ReplayRequest {
  /** The policy; without it, the one the candidate version belongs to. */
  name?: string;
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
  name: string;
  report: ReplayReport;
  text: string;
  since: string;
  baseline: string | null;
  candidate: string;
  /** Decisions in the window; the newest `limit` of them are replayed. */
  inWindow: number;
  limit: number;
  /** Older decisions of the window past the limit, not replayed. */
  leftOut: number;
  /** Decisions recorded without an input (nothing to replay). */
  withoutInput: number;
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
    const name = request.name ?? (await policyOfVersion(this.repo, request.version));
    const candidate = await this.compiled(name, request.version);
    const deployment = await this.repo.currentDeployment(name);
    const baselineId = request.baseline ?? deployment?.stable ?? undefined;
    const baseline = baselineId ? await this.compiled(name, baselineId) : compileOrThrow({ name, rules: [] });
    const recorded = await this.decisions.inputsSince(since, limit);
    const report = replayDecisions(
      recorded.records.map((r) => ({
        id: r.id,
        input: r.input as unknown as EvaluationInput,
        read: r.read,
        // A record that states its phase also states its answer: none means there was none.
        ...(r.phase ? { answered: r.input.response !== undefined } : {}),
      })),
      baseline,
      candidate,
      { maxExamples: request.examples ?? 3 },
    );
    const leftOut = Math.max(0, recorded.inWindow - limit);
    const notes: string[] = [];
    if (leftOut > 0)
      notes.push(
        `  left out: the ${leftOut} oldest of ${recorded.inWindow} decisions in the window (the newest ${limit} were replayed; raise the limit, at most 100,000, or shorten the window)`,
      );
    if (recorded.withoutInput > 0)
      notes.push(`  not replayable: ${recorded.withoutInput} decisions were recorded without their input`);
    return {
      name,
      report,
      text: [formatReplayReport(report), ...notes].join('\n'),
      since: since.toISOString(),
      baseline: baselineId ? baseline.version : null,
      candidate: candidate.version,
      inWindow: recorded.inWindow,
      limit,
      leftOut,
      withoutInput: recorded.withoutInput,
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
