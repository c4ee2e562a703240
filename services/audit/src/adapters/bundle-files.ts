import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleWriter } from '../ports/bundle-writer.js';

/** Writes a bundle into a new or empty folder; never overwrites a file. */
export class DirectoryBundleWriter implements BundleWriter {
  private readonly streams = new Map<string, FileHandle>();

  private constructor(readonly location: string) {}

  static async create(dir: string): Promise<DirectoryBundleWriter> {
    await mkdir(dir, { recursive: true });
    const present = await readdir(dir);
    if (present.length > 0) {
      throw new Error(`${dir} is not empty (${present.slice(0, 3).join(', ')}…): export into a new folder`);
    }
    return new DirectoryBundleWriter(dir);
  }

  async writeFile(name: string, content: string): Promise<void> {
    const handle = await open(join(this.location, name), 'wx', 0o644);
    try {
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async appendLines(name: string, lines: readonly string[]): Promise<void> {
    let handle = this.streams.get(name);
    if (!handle) {
      handle = await open(join(this.location, name), 'wx', 0o644);
      this.streams.set(name, handle);
    }
    if (lines.length > 0) await handle.write(`${lines.join('\n')}\n`, null, 'utf8');
  }

  async close(): Promise<void> {
    for (const handle of this.streams.values()) {
      await handle.sync();
      await handle.close();
    }
    this.streams.clear();
  }
}

export interface BundleFiles {
  readonly checkpoint: string;
  readonly entries: Uint8Array;
  readonly proofs?: string | undefined;
  readonly publicKey: string;
  readonly manifest?: string | undefined;
}

/** Reads a bundle's files; a missing required file is an error naming it. */
export async function readBundleDir(dir: string): Promise<BundleFiles> {
  const required = async (name: string): Promise<Buffer> => {
    try {
      return await readFile(join(dir, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(`${join(dir, name)} is missing: ${dir} is not a complete evidence bundle`);
      }
      throw error;
    }
  };
  const optional = (name: string): Promise<string | undefined> =>
    readFile(join(dir, name), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
  return {
    checkpoint: (await required('checkpoint')).toString('utf8'),
    entries: await required('entries.jsonl'),
    proofs: await optional('proofs.json'),
    publicKey: (await required('public-key')).toString('utf8'),
    manifest: await optional('manifest.json'),
  };
}
