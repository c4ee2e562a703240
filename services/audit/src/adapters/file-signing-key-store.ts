import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SigningKeyStore } from '../ports/signing-key-store.js';

/**
 * The signing key in a file readable by its owner only (0600, folder 0700). Replacing it is
 * atomic (write aside, fsync, rename), so a crash leaves the old or the new key, never half of one.
 */
export class FileSigningKeyStore implements SigningKeyStore {
  readonly writable: boolean;

  /**
   * `provided`: the key comes from outside (audit.signingKeyMode `provided`, e.g. a Secret shared by
   * replicas): a missing file stops start-up instead of a key of this process's own being generated
   * (which would diverge from the other replicas'), and the key is never replaced from here.
   */
  constructor(
    readonly location: string,
    private readonly options: { provided?: boolean } = {},
  ) {
    this.writable = !options.provided;
  }

  async load(): Promise<string | undefined> {
    let mode: number;
    try {
      mode = (await stat(this.location)).mode;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return this.missing('does not exist');
      throw error;
    }
    // Tighten a key someone left readable by others (e.g. restored from a backup).
    if ((mode & 0o077) !== 0 && process.platform !== 'win32') await chmod(this.location, 0o600);
    const text = (await readFile(this.location, 'utf8')).trim();
    return text === '' ? this.missing('is empty') : text;
  }

  private missing(what: string): undefined {
    if (this.options.provided) {
      throw new Error(
        `the audit signing key file ${this.location} ${what}, and FLOWLOOM_AUDIT_SIGNING_KEY_MODE=provided (audit.signingKeyMode) forbids generating one here (replicas must share one key). Fix: create the key once with \`flowloom audit keygen --out FILE\`, put it in the Secret (Helm: auditSigningKey) or at that path, and start again.`,
      );
    }
    return undefined;
  }

  async save(signerKey: string): Promise<void> {
    if (!this.writable) {
      throw new Error(`the audit signing key at ${this.location} is provided from outside: not replacing it`);
    }
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
  readonly writable = false;

  async load(): Promise<string | undefined> {
    return undefined;
  }

  async save(): Promise<void> {
    throw new Error('this reader has no signing key store');
  }
}
