import type { Intervention, SupervisorReport } from '@flowloom/contracts';

/** A failed admin API call, with what the caller needs to react to it. */
export class PlatformApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
    /** The platform has no such endpoint (an older version): a feature to do without, not an error. */
    readonly missingEndpoint: boolean,
  ) {
    super(message);
  }
}

export interface IssuedJobKey {
  id: string;
  /** The secret, handed to the job only. */
  key: string;
  hint: string;
  /** The job policy version bound to the key, when there is one. */
  policy?: string | null;
}

/** POST /api/v1/policies: the stored version (new, or the same document pushed before). */
export interface PushedPolicy {
  created: boolean;
  name: string;
  version: string;
  seq: number;
  author: string;
}

/** GET /api/v1/jobs/{job}, as the gateway answers it. */
export interface JobStatusView {
  job: string;
  status: 'running' | 'stopped' | 'unknown';
  signals?: Record<string, number>;
  requestsInWindow?: number;
  stoppedAt?: string;
  reason?: string;
  stoppedBy?: { actor: string; decisionId?: string; policy?: string; version?: string; rule?: string };
}

/** GET /api/v1/gateway/policy: the bundle a gateway enforces. */
export interface ActivePolicies {
  revision: number;
  policies: Array<{
    name: string;
    stable?: string;
    candidate?: { version: string; mode: string; percent?: number };
  }>;
}

type Fetch = typeof fetch;

/** The admin API calls `flowloom run` makes, with FLOWLOOM_URL and an admin FLOWLOOM_API_KEY. */
export class PlatformApi {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly adminKey: string,
    private readonly fetchImpl: Fetch = fetch,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.adminKey}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      throw new PlatformApiError(
        `cannot reach FlowLoom at ${this.baseUrl} (${(error as Error).message}); is it running (npm start)? Set FLOWLOOM_URL otherwise`,
        0,
        undefined,
        false,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const error = (parsed as { error?: { message?: unknown; code?: unknown } } | undefined)?.error;
      const message = typeof error?.message === 'string' ? error.message : text.slice(0, 300);
      const code = typeof error?.code === 'string' ? error.code : undefined;
      throw new PlatformApiError(
        `${method} ${path} failed (${response.status}): ${message}`,
        response.status,
        code,
        response.status === 404 && message.startsWith('No endpoint '),
      );
    }
    return parsed as T;
  }

  /** A member key of the job's own, so that its traffic, budget and suspension are the job's alone. */
  createJobKey(job: string, project?: string, policy?: string): Promise<IssuedJobKey> {
    return this.request<IssuedJobKey>('POST', '/api/v1/keys', {
      name: `flowloom run ${job}`.slice(0, 200),
      // The gateway tags every request of this key with the job, even one that bypasses the forwarder.
      job,
      ...(project ? { project } : {}),
      // Evaluated for the key's requests next to the active policies (it can only add restrictions).
      ...(policy ? { policy } : {}),
      // A safety net should `flowloom run` itself be killed before it revokes the key.
      expiresInDays: 7,
    });
  }

  async revokeKey(id: string): Promise<void> {
    await this.request('POST', `/api/v1/keys/${encodeURIComponent(id)}/revoke`, {});
  }

  jobStatus(job: string): Promise<JobStatusView> {
    return this.request<JobStatusView>('GET', `/api/v1/jobs/${encodeURIComponent(job)}`);
  }

  async clearJob(job: string): Promise<void> {
    await this.request('POST', `/api/v1/jobs/${encodeURIComponent(job)}/clear`, {});
  }

  /** Records an intervention of the supervisor's own in the platform's evidence (an intervention event). */
  reportIntervention(job: string, report: SupervisorReport): Promise<Intervention> {
    return this.request<Intervention>(
      'POST',
      `/api/v1/jobs/${encodeURIComponent(job)}/interventions`,
      report,
    );
  }

  /** Stores a policy version without deploying it (a job policy: bound to the job's key only). */
  pushPolicy(source: string, filename: string, message: string): Promise<PushedPolicy> {
    return this.request<PushedPolicy>('POST', '/api/v1/policies', {
      source,
      filename,
      message,
      jobPolicy: true,
    });
  }

  activePolicies(): Promise<ActivePolicies> {
    return this.request<ActivePolicies>('GET', '/api/v1/gateway/policy');
  }
}
