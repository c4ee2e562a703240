import { AppError } from '@flowloom/errors';
import {
  type CompiledPolicy,
  compilePolicy,
  type EvaluationInput,
  formatReplayReport,
  type ReplayRecord,
  type ReplayReport,
  replayDecisions,
} from '@flowloom/policy-engine';
import { NOT_IN_REQUEST_EVENTS } from '../domain/request-facts.js';
import { parseSince } from '../domain/rollout.js';
import type { DecisionStore } from '../ports/decision-store.js';
import type { PolicyRepository } from '../ports/policy-repository.js';
import type { RequestStore } from '../ports/request-store.js';
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
  /** Requests in the window (with a decision, or only a request event); the newest `limit` are replayed. */
  inWindow: number;
  /**
   * Of those replayed, requests no decision was recorded for (no policy was active): replayed on the
   * facts their request events tell, the rest reported as missing inputs.
   */
  fromRequestEvents: number;
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
    /** Request events, for requests without a decision; without it only decisions are replayed. */
    private readonly requests?: RequestStore,
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
    const undecided = this.requests
      ? await this.requests.undecidedSince(since, limit)
      : { records: [], inWindow: 0 };
    const traffic: Array<{ at: string; record: ReplayRecord }> = [
      ...recorded.records.map((r) => ({
        at: r.at,
        record: {
          id: r.id,
          input: r.input as unknown as EvaluationInput,
          read: r.read,
          // A record that states its phase also states its answer: none means there was none.
          ...(r.phase ? { answered: r.input.response !== undefined } : {}),
        },
      })),
      ...undecided.records.map((r) => ({
        at: r.at,
        record: {
          id: r.requestId,
          input: r.input as unknown as EvaluationInput,
          answered: r.answered,
          missing: NOT_IN_REQUEST_EVENTS,
        },
      })),
    ];
    // The newest `limit` of both, oldest first, as a gateway saw them.
    traffic.sort((a, b) => a.at.localeCompare(b.at));
    const replayed = traffic.slice(Math.max(0, traffic.length - limit));
    const fromRequestEvents = replayed.filter((t) => t.record.missing !== undefined).length;
    const report = replayDecisions(
      replayed.map((t) => t.record),
      baseline,
      candidate,
      { maxExamples: request.examples ?? 3 },
    );
    const inWindow = recorded.inWindow + undecided.inWindow;
    const leftOut = Math.max(0, inWindow - limit);
    const notes: string[] = [];
    if (leftOut > 0)
      notes.push(
        `  left out: the ${leftOut} oldest of ${inWindow} ${undecided.inWindow > 0 ? 'requests' : 'decisions'} in the window (the newest ${limit} were replayed; raise the limit, at most 100,000, or shorten the window)`,
      );
    if (fromRequestEvents > 0)
      notes.push(
        `  from request events: ${fromRequestEvents} requests had no recorded decision (no policy was active); they were replayed on the facts of their request.completed / request.failed events, which do not tell ${NOT_IN_REQUEST_EVENTS.join(', ')} (counted above as missing where a version reads them)`,
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
      inWindow,
      fromRequestEvents,
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
