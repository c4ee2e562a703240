import { decisionRecordSchema, interventionSchema } from '@flowloom/contracts';
import { z } from 'zod';
import {
  actionDetail,
  findingOf,
  findingOfDecision,
  type JobObservation,
  type JobWatch,
  type JobWatcher,
} from './job-watcher.js';
import { type PlatformApi, PlatformApiError } from './platform-api.js';

const versionDocument = z.object({
  document: z.object({
    rules: z.array(
      z.object({ id: z.string(), action: z.object({ type: z.string() }).catchall(z.unknown()) }),
    ),
  }),
});

type RuleActions = ReadonlyMap<string, { type: string } & Record<string, unknown>>;

/** Actions whose parameters (a delay, a target, a cap) an intervention does not carry. */
const WITH_PARAMETERS = new Set(['throttle', 'reroute', 'cap_max_tokens']);

const interventionPage = z.object({
  data: z.array(interventionSchema.extend({ at: z.string().optional() })),
  next: z.string().nullable().optional(),
});

export interface ApiJobWatcherOptions {
  /** How often the job is looked at; a refused request makes it look at once. */
  intervalMs?: number;
}

/**
 * Watches a job through the admin API of a running platform:
 * - `GET /api/v1/jobs/{job}`: stopped or running, by which decision, and the job's live signals;
 * - `GET /api/v1/jobs/{job}/interventions?after=ID`: every policy finding about the job, shadow and
 *   canary included, with the values and thresholds (where the platform has this endpoint);
 * - `GET /api/v1/decisions/{id}`: the full record of a decision known only from a refusal or a stop;
 * - `GET /api/v1/policies/{name}/versions/{version}`: a rule's action parameters (once per version).
 */
export class ApiJobWatcher implements JobWatcher {
  constructor(
    private readonly api: PlatformApi,
    private readonly options: ApiJobWatcherOptions = {},
  ) {}

  watch(job: string, observe: (observation: JobObservation) => void): JobWatch {
    const intervalMs = this.options.intervalMs ?? 1_000;
    const path = `/api/v1/jobs/${encodeURIComponent(job)}`;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> | undefined;
    let again = false;
    let cursor: string | undefined;
    let interventions = true;
    let decisions = true;
    let versions = true;
    const documents = new Map<string, Promise<RuleActions | undefined>>();
    const ruleActions = (policy: string, version: string): Promise<RuleActions | undefined> => {
      const key = `${policy}@${version}`;
      let found = documents.get(key);
      if (!found) {
        found = this.api
          .request<unknown>(
            'GET',
            `/api/v1/policies/${encodeURIComponent(policy)}/versions/${encodeURIComponent(version)}`,
          )
          .then((body) => new Map(versionDocument.parse(body).document.rules.map((r) => [r.id, r.action])))
          .catch((error: unknown) => {
            if (error instanceof PlatformApiError && error.missingEndpoint) versions = false;
            return undefined;
          });
        documents.set(key, found);
      }
      return found;
    };
    const toExplain = new Map<string, number>();
    let statusFailure: string | undefined;

    const explainPending = async (): Promise<void> => {
      for (const [id, tries] of [...toExplain].slice(0, 5)) {
        try {
          const record = decisionRecordSchema.parse(
            await this.api.request<unknown>('GET', `/api/v1/decisions/${encodeURIComponent(id)}`),
          );
          toExplain.delete(id);
          const finding = findingOfDecision(record);
          if (finding) observe({ kind: 'finding', finding, at: Date.parse(record.at) });
        } catch (error) {
          if (error instanceof PlatformApiError && error.missingEndpoint) {
            decisions = false;
            toExplain.clear();
            return;
          }
          // Not recorded yet (the outbox is asynchronous) or a passing failure: a few more tries.
          if (tries >= 5) toExplain.delete(id);
          else toExplain.set(id, tries + 1);
        }
      }
    };

    const once = async (): Promise<void> => {
      try {
        const status = await this.api.jobStatus(job);
        statusFailure = undefined;
        if (status.status === 'stopped' && status.stoppedBy) {
          const by = status.stoppedBy;
          const at = status.stoppedAt ? Date.parse(status.stoppedAt) : undefined;
          observe({
            kind: 'stopped',
            stop: {
              actor: by.actor,
              reason: status.reason ?? 'stopped',
              ...(by.decisionId ? { decisionId: by.decisionId } : {}),
              ...(by.policy ? { policy: by.policy } : {}),
              ...(by.version ? { version: by.version } : {}),
              ...(by.rule ? { rule: by.rule } : {}),
            },
            ...(at !== undefined && Number.isFinite(at) ? { at } : {}),
          });
        }
        if (status.signals) observe({ kind: 'signals', signals: status.signals });
      } catch (error) {
        const message = (error as Error).message;
        if (message !== statusFailure)
          observe({ kind: 'limited', what: `job status unavailable: ${message}` });
        statusFailure = message;
      }
      if (decisions && toExplain.size > 0) await explainPending();
      if (!interventions) return;
      try {
        for (let page = 0; page < 10; page++) {
          const query = new URLSearchParams({ limit: '100', ...(cursor ? { after: cursor } : {}) });
          const body = interventionPage.parse(
            await this.api.request<unknown>('GET', `${path}/interventions?${query}`),
          );
          for (const item of body.data) {
            const { at, ...intervention } = item;
            // The supervisor's own reports: it knows them already.
            if (intervention.origin === 'supervisor') {
              cursor = intervention.decisionId;
              continue;
            }
            const time = at ? Date.parse(at) : undefined;
            let finding = findingOf(intervention);
            if (versions && finding.rule && WITH_PARAMETERS.has(finding.action)) {
              const action = (await ruleActions(finding.policy, finding.version))?.get(finding.rule);
              const detail = action?.type === finding.action ? actionDetail(action) : undefined;
              if (detail) finding = { ...finding, detail };
            }
            observe({
              kind: 'finding',
              finding,
              ...(time !== undefined && Number.isFinite(time) ? { at: time } : {}),
            });
            cursor = intervention.decisionId;
          }
          if (body.next) cursor = body.next;
          if (!body.next || body.data.length === 0) break;
        }
      } catch (error) {
        if (error instanceof PlatformApiError && error.missingEndpoint) {
          interventions = false;
          observe({
            kind: 'limited',
            what: `this platform does not list a job's interventions (GET ${path}/interventions): shadow and canary findings are not shown`,
          });
        }
        // Anything else (a restart of the platform, a timeout): the next poll tries again.
      }
    };

    const run = (): void => {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      clearTimeout(timer);
      running = once().finally(() => {
        running = undefined;
        if (stopped) return;
        if (again) {
          again = false;
          run();
        } else timer = setTimeout(run, intervalMs);
      });
    };
    run();
    return {
      poke: run,
      explain: (decisionId) => {
        if (!decisions || toExplain.has(decisionId)) return;
        toExplain.set(decisionId, 0);
        run();
      },
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        await running;
      },
    };
  }
}
