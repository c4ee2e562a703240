import type { EventBus } from '@flowloom/bus';
import {
  type DecisionRecord,
  decisionRecordSchema,
  interventionSchema,
  jobChangedSchema,
  POLICY_DECISION,
  POLICY_INTERVENTION,
  POLICY_JOB_CHANGED,
} from '@flowloom/contracts';
import { findingOf, type JobObservation, type JobWatch, type JobWatcher } from './job-watcher.js';

const KEPT_DECISIONS = 1_000;

/**
 * Watches jobs through the event bus of a platform running in this process (`flowloom demo`): every
 * intervention (shadow and canary included, with values and thresholds) and every stop, as they are
 * published. Call `ready()` before the job starts so that nothing is missed.
 */
export class BusJobWatcher implements JobWatcher {
  private readonly observers = new Map<string, Set<(o: JobObservation) => void>>();
  private readonly decisions = new Map<string, DecisionRecord>();
  private subscribed: Promise<void> | undefined;

  constructor(
    private readonly bus: EventBus,
    private readonly group = `flowloom-run-${process.pid}`,
  ) {}

  ready(): Promise<void> {
    this.subscribed ??= this.bus.subscribe(this.group, async (event) => this.deliver(event), [
      'dev.flowloom.policy.',
    ]);
    return this.subscribed;
  }

  watch(job: string, observe: (observation: JobObservation) => void): JobWatch {
    void this.ready();
    const set = this.observers.get(job) ?? new Set();
    this.observers.set(job, set);
    set.add(observe);
    return {
      poke: () => {},
      stop: async () => {
        set.delete(observe);
        if (set.size === 0) this.observers.delete(job);
      },
    };
  }

  private deliver(event: { type: string; time: string; data: unknown }): void {
    const at = Date.parse(event.time);
    const time = Number.isFinite(at) ? { at } : {};
    if (event.type === POLICY_DECISION) {
      const parsed = decisionRecordSchema.safeParse(event.data);
      if (!parsed.success || !parsed.data.job || !this.observers.has(parsed.data.job)) return;
      this.decisions.set(parsed.data.decisionId, parsed.data);
      if (this.decisions.size > KEPT_DECISIONS) {
        const oldest = this.decisions.keys().next().value;
        if (oldest !== undefined) this.decisions.delete(oldest);
      }
    } else if (event.type === POLICY_INTERVENTION) {
      const parsed = interventionSchema.safeParse(event.data);
      // The supervisor's own reports (origin supervisor): it knows them already.
      if (!parsed.success || !parsed.data.job || parsed.data.origin === 'supervisor') return;
      const finding = findingOf(parsed.data, this.decisions.get(parsed.data.decisionId));
      this.emit(parsed.data.job, { kind: 'finding', finding, ...time });
    } else if (event.type === POLICY_JOB_CHANGED) {
      const parsed = jobChangedSchema.safeParse(event.data);
      if (!parsed.success || parsed.data.status !== 'stopped') return;
      const c = parsed.data;
      this.emit(c.job, {
        kind: 'stopped',
        stop: {
          actor: c.actor,
          reason: c.reason ?? 'stopped',
          ...(c.decisionId ? { decisionId: c.decisionId } : {}),
          ...(c.policy ? { policy: c.policy } : {}),
          ...(c.version ? { version: c.version } : {}),
          ...(c.rule ? { rule: c.rule } : {}),
        },
        ...time,
      });
    }
  }

  private emit(job: string, observation: JobObservation): void {
    for (const observe of this.observers.get(job) ?? []) observe(observation);
  }
}
