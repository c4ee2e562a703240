import { AppError, isAppError } from '@flowloom/errors';
import {
  type CompiledPolicy,
  compilePolicy,
  formatDiagnostics,
  JOB_POLICY_FORBIDDEN_ACTIONS,
} from '@flowloom/policy-engine';
import type { FetchedPolicyVersion } from '../ports/policy-source.js';

const FULL_ID = /^[0-9a-f]{64}$/;
const DEFAULT_CAPACITY = 256;

/**
 * Job policies (`flowloom run --policy`): versions bound to a key and evaluated for its requests next
 * to the active bundle. Each version is fetched from the policy service once, checked to only add
 * restrictions, compiled and kept (versions are immutable), so a request never waits for the network
 * after its key's first one. The least recently used versions are dropped past `capacity`.
 */
export class JobPolicies {
  private readonly compiled = new Map<string, CompiledPolicy>();
  private readonly loading = new Map<string, Promise<CompiledPolicy>>();

  constructor(
    /** The policy service; without it a version cannot be fetched (a gateway on a policy file). */
    private readonly fetchVersion: ((idOrPrefix: string) => Promise<FetchedPolicyVersion>) | undefined,
    private readonly capacity = DEFAULT_CAPACITY,
  ) {}

  /** A version already compiled, without waiting: the hot path. */
  cached(version: string): CompiledPolicy | undefined {
    const policy = this.compiled.get(version);
    if (policy) {
      // Most recently used last, so eviction takes the coldest.
      this.compiled.delete(version);
      this.compiled.set(version, policy);
    }
    return policy;
  }

  /** By id or unique prefix: fetched (once, whatever the concurrency), checked and compiled. */
  get(idOrPrefix: string): Promise<CompiledPolicy> {
    const id = idOrPrefix.toLowerCase();
    const hit = FULL_ID.test(id) ? this.cached(id) : undefined;
    if (hit) return Promise.resolve(hit);
    let pending = this.loading.get(id);
    if (!pending) {
      pending = this.load(id).finally(() => this.loading.delete(id));
      this.loading.set(id, pending);
    }
    return pending;
  }

  private async load(id: string): Promise<CompiledPolicy> {
    if (!this.fetchVersion)
      throw new AppError(
        'invalid_request',
        'This gateway has no policy service to fetch job policies from (it enforces a policy file).',
        { param: 'policy' },
      );
    let fetched: FetchedPolicyVersion;
    try {
      fetched = await this.fetchVersion(id);
    } catch (error) {
      if (isAppError(error)) throw error;
      throw new AppError(
        'unavailable',
        `Job policy ${id.slice(0, 12)} could not be fetched from the policy service: ${(error as Error).message}`,
      );
    }
    const result = compilePolicy(fetched.document, { forbiddenActions: JOB_POLICY_FORBIDDEN_ACTIONS });
    if (!result.ok)
      throw new AppError(
        'invalid_request',
        `Policy "${fetched.name}" version ${fetched.version.slice(0, 12)} cannot be a job policy:\n${formatDiagnostics(result.errors)}`,
        { param: 'policy' },
      );
    if (result.policy.version !== fetched.version)
      throw new AppError(
        'unavailable',
        `Job policy "${fetched.name}": the document hashes to ${result.policy.version.slice(0, 12)}, not ${fetched.version.slice(0, 12)}.`,
      );
    this.compiled.set(result.policy.version, result.policy);
    while (this.compiled.size > this.capacity) {
      const oldest = this.compiled.keys().next().value;
      if (oldest === undefined) break;
      this.compiled.delete(oldest);
    }
    return result.policy;
  }
}
