/**
 * Spots a job that has gone quiet: no output line and no AI request for `silenceMs`. Reported once per
 * quiet spell; any activity re-arms it.
 */
export interface Silence {
  /** How long the job had been quiet when reported. */
  silentForMs: number;
  silenceMs: number;
}

export class SilenceDetector {
  private lastActivity: number;
  private reported = false;

  constructor(
    private readonly silenceMs: number,
    startedAt: number,
  ) {
    if (!(silenceMs > 0)) throw new Error('the silence period must be positive');
    this.lastActivity = startedAt;
  }

  activity(now: number): void {
    if (now >= this.lastActivity) this.lastActivity = now;
    this.reported = false;
  }

  check(now: number): Silence | undefined {
    const quiet = now - this.lastActivity;
    if (this.reported || quiet < this.silenceMs) return undefined;
    this.reported = true;
    return { silentForMs: quiet, silenceMs: this.silenceMs };
  }
}
