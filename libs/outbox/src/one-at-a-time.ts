/**
 * Runs an outbox's publishes one after another in this process, each once the one before settled:
 * an explicit flush and the relay's own round never take the same batch, and a flush returns only
 * after the round that was in flight (whose events it may not otherwise see on the bus yet).
 */
export class OneAtATime {
  private last: Promise<void> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const run = this.last.then(task);
    this.last = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}
