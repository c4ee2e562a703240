import type { PolicyBundle } from '@flowloom/contracts';
import type { Deployment } from '../domain/model.js';
import type { PolicyRepository } from '../ports/policy-repository.js';

/**
 * The active bundle and its subscribers: gateways in this process (a direct call) and gRPC streams.
 * A change made here is pushed at once; changes by other replicas are noticed by polling the
 * revision (`pollMs`, 250 ms by default), so every gateway has a new version within a second.
 */
export class BundleDistributor {
  private bundle: PolicyBundle = { revision: 0, policies: [] };
  private readonly listeners = new Set<(bundle: PolicyBundle) => void>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private refreshing: Promise<void> = Promise.resolve();

  constructor(
    private readonly repo: PolicyRepository,
    private readonly onError: (error: unknown) => void,
    private readonly pollMs = 250,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      void this.refreshIfChanged();
    }, this.pollMs);
    this.timer.unref?.();
  }

  current(): PolicyBundle {
    return this.bundle;
  }

  /** The PolicySource gateways subscribe to (the same shape as the gateway's port). */
  subscribe(onBundle: (bundle: PolicyBundle) => void): () => void {
    this.listeners.add(onBundle);
    onBundle(this.bundle);
    return () => this.listeners.delete(onBundle);
  }

  /** Rebuilds the bundle now (after a change in this process). */
  refresh(): Promise<void> {
    const run = this.refreshing.then(() => this.rebuild());
    this.refreshing = run.catch((error: unknown) => this.onError(error));
    return this.refreshing;
  }

  private async refreshIfChanged(): Promise<void> {
    try {
      if ((await this.repo.revision()) !== this.bundle.revision) await this.refresh();
    } catch (error) {
      this.onError(error);
    }
  }

  private async rebuild(): Promise<void> {
    const { revision, deployments } = await this.repo.activeDeployments();
    if (revision === this.bundle.revision && revision !== 0) return;
    const policies = await Promise.all(deployments.map((d) => this.entry(d)));
    const bundle: PolicyBundle = { revision, policies: policies.filter((p) => p.stable || p.candidate) };
    if (bundle.revision < this.bundle.revision) return;
    this.bundle = bundle;
    for (const listener of this.listeners) {
      try {
        listener(bundle);
      } catch (error) {
        this.onError(error);
      }
    }
  }

  private async entry(d: Deployment): Promise<PolicyBundle['policies'][number]> {
    const stable = d.stable ? await this.repo.getVersion(d.name, d.stable) : undefined;
    const candidate = d.candidate ? await this.repo.getVersion(d.name, d.candidate) : undefined;
    return {
      name: d.name,
      ...(stable ? { stable: { version: stable.version, document: stable.document } } : {}),
      ...(candidate && d.candidateMode
        ? {
            candidate: {
              version: candidate.version,
              document: candidate.document,
              mode: d.candidateMode,
              ...(d.candidateMode === 'canary' ? { percent: d.percent ?? 0, by: d.by ?? 'job' } : {}),
            },
          }
        : {}),
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.listeners.clear();
  }
}
