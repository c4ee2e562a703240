/** One request of a load run: who answered what, and the gateway's request id (its event's key). */
export interface Answer {
  target: string;
  /** HTTP status; 0 when no answer came (connection refused or reset, timeout). */
  status: number;
  requestId: string | null;
  /** The error code of a refusal (OpenAI `error.code`, Anthropic `error.type`). */
  code?: string;
}

export interface LoadOptions {
  /** Gateway base URLs, used in turn; read before every request so a list can change mid-run. */
  targets: () => readonly string[];
  key: string;
  path?: string;
  body: (n: number) => unknown;
  headers?: Record<string, string>;
  concurrency: number;
  /** A pause after each answer, per connection: paces a caller that should spend slowly. */
  pauseMs?: number;
}

/**
 * Closed-loop load that records every answer, so a fault test can match what callers were told
 * against what the audit trail holds. Requests that get no answer are kept too (status 0).
 */
export class Load {
  readonly answers: Answer[] = [];
  private running = true;
  private sent = 0;
  private readonly workers: Promise<void>[];

  constructor(private readonly options: LoadOptions) {
    this.workers = Array.from({ length: options.concurrency }, () => this.worker());
  }

  private async worker(): Promise<void> {
    while (this.running) {
      const targets = this.options.targets();
      const n = this.sent++;
      const target = targets[n % targets.length];
      if (!target) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      this.answers.push(await send(target, this.options, n));
      if (this.options.pauseMs) await new Promise((r) => setTimeout(r, this.options.pauseMs));
    }
  }

  /** Answers with a 2xx status. */
  get answered(): Answer[] {
    return this.answers.filter((a) => a.status >= 200 && a.status < 300);
  }

  /** Resolves once `count` more requests were answered (2xx), or fails after `timeoutMs`. */
  async waitForAnswers(count: number, timeoutMs = 30_000): Promise<void> {
    const goal = this.answered.length + count;
    const deadline = Date.now() + timeoutMs;
    while (this.answered.length < goal) {
      if (Date.now() > deadline) {
        const last = this.answers.slice(-5).map((a) => `${a.status} ${a.code ?? ''}`);
        throw new Error(
          `load: only ${this.answered.length}/${goal} answered after ${timeoutMs} ms (last: ${last})`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<Answer[]> {
    this.running = false;
    await Promise.all(this.workers);
    return this.answers;
  }
}

async function send(target: string, options: LoadOptions, n: number): Promise<Answer> {
  try {
    const response = await fetch(`${target}${options.path ?? '/v1/chat/completions'}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${options.key}`,
        'content-type': 'application/json',
        ...options.headers,
      },
      body: JSON.stringify(options.body(n)),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    const answer: Answer = {
      target,
      status: response.status,
      requestId: response.headers.get('x-request-id'),
    };
    if (!response.ok) answer.code = errorCode(text);
    return answer;
  } catch (error) {
    return { target, status: 0, requestId: null, code: (error as Error).name };
  }
}

function errorCode(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { code?: string; type?: string } };
    return body.error?.code ?? body.error?.type ?? 'unknown';
  } catch {
    return 'not-json';
  }
}
