/** Why a job was stopped; its requests are refused until an admin clears it. */
export interface JobStop {
  readonly job: string;
  /** Epoch milliseconds. */
  readonly stoppedAt: number;
  readonly reason: string;
  /** `policy/<name>@<version> rule <id>` or the admin's key. */
  readonly actor: string;
  readonly decisionId?: string;
  readonly policy?: string;
  readonly version?: string;
  readonly rule?: string;
}

const TEXT = (v: unknown): v is string => typeof v === 'string';

/** Parses a stored stop record; anything malformed reads as "not stopped" rather than crashing requests. */
export function parseJobStop(json: string | null | undefined): JobStop | undefined {
  if (!json) return undefined;
  try {
    const v = JSON.parse(json) as Record<string, unknown>;
    if (!TEXT(v.job) || typeof v.stoppedAt !== 'number' || !TEXT(v.reason) || !TEXT(v.actor))
      return undefined;
    return {
      job: v.job,
      stoppedAt: v.stoppedAt,
      reason: v.reason,
      actor: v.actor,
      ...(TEXT(v.decisionId) ? { decisionId: v.decisionId } : {}),
      ...(TEXT(v.policy) ? { policy: v.policy } : {}),
      ...(TEXT(v.version) ? { version: v.version } : {}),
      ...(TEXT(v.rule) ? { rule: v.rule } : {}),
    };
  } catch {
    return undefined;
  }
}
