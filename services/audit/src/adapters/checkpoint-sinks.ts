import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointSink } from '../ports/checkpoint-sink.js';

/** The file a checkpoint gets in audit.checkpointDir: sorts by tree size. */
export function checkpointFileName(treeSize: number, keyId: string): string {
  return `${String(treeSize).padStart(20, '0')}-${keyId}.checkpoint`;
}

/** Writes each checkpoint as its own file in a folder (mount it from another system or WORM storage). */
export class DirectoryCheckpointSink implements CheckpointSink {
  readonly name: string;

  constructor(private readonly dir: string) {
    this.name = `folder ${dir}`;
  }

  async publish(checkpoint: { treeSize: number; keyId: string; note: string }): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, checkpointFileName(checkpoint.treeSize, checkpoint.keyId));
    const existing = await readFile(path, 'utf8').catch(() => undefined);
    if (existing === checkpoint.note) return;
    if (existing !== undefined) {
      throw new Error(
        `${path} already holds a different checkpoint for this size and key: refusing to replace it`,
      );
    }
    const aside = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(aside, 'wx', 0o644);
    try {
      await handle.writeFile(checkpoint.note, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(aside, path);
  }
}

/** POSTs each checkpoint (text/plain, the signed note) to a witness endpoint; any 2xx is success. */
export class HttpCheckpointSink implements CheckpointSink {
  readonly name: string;

  constructor(
    private readonly url: string,
    private readonly timeoutMs = 5_000,
  ) {
    const parsed = new URL(url);
    this.name = `witness ${parsed.origin}${parsed.pathname}`;
  }

  async publish(checkpoint: { treeSize: number; keyId: string; note: string }): Promise<void> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'text/plain; charset=utf-8',
        'x-flowloom-tree-size': String(checkpoint.treeSize),
        'x-flowloom-key-id': checkpoint.keyId,
      },
      body: checkpoint.note,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) throw new Error(`${this.name} answered ${response.status}`);
  }
}
