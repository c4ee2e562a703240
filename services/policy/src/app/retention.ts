import type { OperationalRetention, PrunedRows } from '../ports/operational-retention.js';

const DAY_MS = 86_400_000;

export interface RetentionSchedule {
  days: number;
  intervalMs: number;
  /** A pass that removed rows, for the log. */
  onPruned(pruned: PrunedRows, cutoff: Date): void;
  onError(error: unknown): void;
}

/** The first pass waits this long at most, so that start-up and the first requests never share the database with it. */
const FIRST_PASS_MAX_DELAY_MS = 60_000;

/**
 * Runs retention soon after start (catching up on a data folder that sat idle) and then every
 * `intervalMs`. Passes never overlap: the next is scheduled when one ends. Returns how to stop it.
 */
export function scheduleRetention(
  retention: OperationalRetention,
  schedule: RetentionSchedule,
): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const pass = async (): Promise<void> => {
    const cutoff = new Date(Date.now() - schedule.days * DAY_MS);
    try {
      const pruned = await retention.pruneBefore(cutoff);
      if (pruned.decisions + pruned.interventions + pruned.requests > 0) schedule.onPruned(pruned, cutoff);
    } catch (error) {
      schedule.onError(error);
    }
  };
  const run = (): void => {
    if (stopped) return;
    running = pass().finally(() => {
      if (stopped) return;
      timer = setTimeout(run, schedule.intervalMs);
      timer.unref();
    });
  };
  timer = setTimeout(run, Math.min(schedule.intervalMs, FIRST_PASS_MAX_DELAY_MS));
  timer.unref();
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  };
}
