import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SigningKeyStore } from '../ports/signing-key-store.js';

/**
 * The signing key in a file readable by its owner only (0600, folder 0700). Replacing it is
 * atomic (write aside, fsync, rename), so a crash leaves the old or the new key, never half of one.
 */
export class FileSigningKeyStore implements SigningKeyStore {
  constructor(readonly location: string) {}

  async load(): Promise<string | undefined> {
    let mode: number;
    try {
      mode = (await stat(this.location)).mode;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    // Tighten a key someone left readable by others (e.g. restored from a backup).
    if ((mode & 0o077) !== 0 && process.platform !== 'win32') await chmod(this.location, 0o600);
    const text = (await readFile(this.location, 'utf8')).trim();
    return text === '' ? undefined : text;
  }

  async save(signerKey: string): Promise<void> {
    await mkdir(dirname(this.location), { recursive: true, mode: 0o700 });
    const aside = `${this.location}.${randomBytes(4).toString('hex')}.tmp`;
    const handle = await open(aside, 'wx', 0o600);
    try {
      await handle.writeFile(`${signerKey}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(aside, this.location);
    if (process.platform !== 'win32') await chmod(this.location, 0o600);
  }
}

/** No signing key: a reader (the CLI on a database) that signs nothing. */
export class NoSigningKey implements SigningKeyStore {
  readonly location = 'nowhere (read-only)';

  async load(): Promise<string | undefined> {
    return undefined;
  }

  async save(): Promise<void> {
    throw new Error('this reader has no signing key store');
  }
}
