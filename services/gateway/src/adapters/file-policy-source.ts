import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { PolicyBundle } from '@flowloom/contracts';
import { formatDiagnostics, loadPolicy } from '@flowloom/policy-engine';
import type { PolicySource } from '../ports/policy-source.js';

export interface FileRollout {
  mode: 'enforce' | 'shadow' | 'canary';
  percent: number;
}

/**
 * A policy file enforced by a gateway that runs without the policy service. The file is watched:
 * a valid change is in force within a second; an invalid one is reported and never becomes active.
 */
export class FilePolicySource implements PolicySource {
  private bundle: PolicyBundle;
  private readonly listeners = new Set<(bundle: PolicyBundle) => void>();
  private watching = false;
  private lastSource: string;

  private constructor(
    private readonly path: string,
    private readonly rollout: FileRollout,
    private readonly onInvalid: (message: string) => void,
    source: string,
    bundle: PolicyBundle,
  ) {
    this.lastSource = source;
    this.bundle = bundle;
  }

  /** Reads and validates the file; an invalid policy stops start-up with the pointed diagnostics. */
  static open(path: string, rollout: FileRollout, onInvalid: (message: string) => void): FilePolicySource {
    const source = FilePolicySource.read(path);
    const bundle = FilePolicySource.toBundle(path, source, rollout, 1);
    if (typeof bundle === 'string') throw new Error(bundle);
    return new FilePolicySource(path, rollout, onInvalid, source, bundle);
  }

  private static read(path: string): string {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new Error(`Cannot read the policy file ${path}: ${(error as Error).message}`);
    }
  }

  private static toBundle(
    path: string,
    source: string,
    rollout: FileRollout,
    revision: number,
  ): PolicyBundle | string {
    const loaded = loadPolicy(source, { filename: path });
    if (!loaded.ok) return `The policy file ${path} is invalid:\n${formatDiagnostics(loaded.errors)}`;
    const version = { version: loaded.policy.version, document: loaded.document };
    return {
      revision,
      policies: [
        rollout.mode === 'enforce'
          ? { name: loaded.policy.name, stable: version }
          : {
              name: loaded.policy.name,
              candidate: {
                ...version,
                mode: rollout.mode,
                ...(rollout.mode === 'canary' ? { percent: rollout.percent } : {}),
              },
            },
      ],
    };
  }

  subscribe(onBundle: (bundle: PolicyBundle) => void): () => void {
    this.listeners.add(onBundle);
    onBundle(this.bundle);
    if (!this.watching) {
      this.watching = true;
      watchFile(this.path, { interval: 250, persistent: false }, () => this.reload());
    }
    return () => this.listeners.delete(onBundle);
  }

  private reload(): void {
    let source: string;
    try {
      source = FilePolicySource.read(this.path);
    } catch (error) {
      this.onInvalid(`${(error as Error).message}; the previous version stays in force`);
      return;
    }
    if (source === this.lastSource) return;
    this.lastSource = source;
    const bundle = FilePolicySource.toBundle(this.path, source, this.rollout, this.bundle.revision + 1);
    if (typeof bundle === 'string') {
      this.onInvalid(`${bundle}\nThe previous version stays in force.`);
      return;
    }
    this.bundle = bundle;
    for (const listener of this.listeners) listener(bundle);
  }

  async close(): Promise<void> {
    if (this.watching) unwatchFile(this.path);
    this.listeners.clear();
  }
}
