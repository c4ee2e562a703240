import type { PolicyBundle } from '@flowloom/contracts';
import { compilePolicy, formatDiagnostics } from '@flowloom/policy-engine';

/** The policy of the demo: stop an agent that loops, slow down one that bursts. */
export const RUNAWAY_GUARD = {
  name: 'runaway-guard',
  description: 'Stops agents that loop on the same prompt; slows down bursts of requests.',
  rules: [
    {
      id: 'agent-loop',
      description: 'the same prompt keeps coming back',
      condition: 'signals.repeated_prompts >= 3',
      action: 'stop_job',
      message: 'the job sent the same prompt 4 times within 5 minutes: it is looping',
    },
    {
      id: 'burst',
      description: 'too many requests in a minute',
      condition: 'signals.requests_per_minute >= 10',
      action: { type: 'throttle', delayMs: 300 },
      message: '10 or more requests within a minute: each further one waits 300 ms',
    },
  ],
} as const;

export interface CompiledDemoPolicy {
  name: string;
  version: string;
  document: unknown;
}

export function compileDemoPolicy(document: unknown = RUNAWAY_GUARD): CompiledDemoPolicy {
  const result = compilePolicy(document);
  if (!result.ok) throw new Error(`the demo policy does not compile:\n${formatDiagnostics(result.errors)}`);
  return { name: result.document.name, version: result.policy.version, document: result.document };
}

/**
 * Where the demo's gateway gets its policies: bundles handed over in this process, as the policy
 * service does when it runs in the same process. `shadow` and `enforce` stand for
 * `flowloom policy push` and an approved `flowloom policy promote`.
 */
export class DemoPolicySource {
  private bundle: PolicyBundle | undefined;
  private readonly listeners = new Set<(bundle: PolicyBundle) => void>();

  subscribe(onBundle: (bundle: PolicyBundle) => void): () => void {
    this.listeners.add(onBundle);
    if (this.bundle) onBundle(this.bundle);
    return () => this.listeners.delete(onBundle);
  }

  /** The version is evaluated on every request and recorded; nothing is changed. */
  shadow(policy: CompiledDemoPolicy): void {
    this.publish({
      name: policy.name,
      candidate: { version: policy.version, document: policy.document, mode: 'shadow' },
    });
  }

  /** The version is enforced. */
  enforce(policy: CompiledDemoPolicy): void {
    this.publish({ name: policy.name, stable: { version: policy.version, document: policy.document } });
  }

  private publish(policy: PolicyBundle['policies'][number]): void {
    const bundle: PolicyBundle = { revision: (this.bundle?.revision ?? 0) + 1, policies: [policy] };
    this.bundle = bundle;
    for (const listener of this.listeners) listener(bundle);
  }
}
