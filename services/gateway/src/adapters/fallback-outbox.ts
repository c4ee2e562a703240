import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { CloudEvent } from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import { DatabaseUnavailableError } from '@flowloom/store';
import type { Outbox } from '../ports/outbox.js';
import { FileOutbox, type FsyncMode } from './file-outbox.js';

export type OutboxOnDatabaseDown = 'spool' | 'fail';

export interface FallbackOutboxOptions {
  mode: OutboxOnDatabaseDown;
  /** The durable local spool's folder (`spool` mode); it must belong to this replica alone. */
  spoolDir: string;
  fsync: FsyncMode;
  /** Resolves when the database answers. */
  probe: () => Promise<void>;
  /** How often the database is probed: while it is down, and in `fail` mode always. */
  probeMs?: number;
  onChange?: (down: boolean, reason: string) => void;
  onError?: (error: unknown) => void;
  /** How long `close` keeps trying to move a non-empty spool into the database (default 5 s). */
  drainOnCloseMs?: number;
  /** What became of the spool at `close`, when it held events: for the log. */
  onClose?: (message: string, left: number) => void;
}

const RETRY_SECONDS = 2;
/** A spool backlog the relay moves in one round (its batch): appends wait for it rather than join it. */
const SPOOL_TAIL = 1_000;
/** How long an append waits for the spool's last batch to move before it is appended behind it after all. */
const SPOOL_TAIL_WAIT_MS = 1_000;

/**
 * The PostgreSQL outbox with a plan for the database being unreachable.
 *
 * `spool`: an append the database refuses goes to a durable local spool (the embedded FileOutbox),
 * which drains into the database once it answers again (inserts are idempotent by event id, so a
 * batch moved twice is stored once). Later appends queue behind the spool until it is empty, so a
 * subject's events keep their order.
 *
 * `fail`: the database is probed every `probeMs`; while it is unreachable `ensureWritable` refuses
 * requests before any upstream call, and an append that fails anyway answers 503 instead of an
 * unrecorded success.
 */
export class FallbackOutbox implements Outbox {
  private downSince: number | undefined;
  private lastError = '';
  private spoolWrites = 0;
  private probing = false;
  /** Appends waiting for the spool's last round (see awaitSpoolTail). */
  private spoolTail: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly database: Outbox,
    private readonly spool: FileOutbox | undefined,
    private readonly options: FallbackOutboxOptions,
  ) {}

  /** `database` is the plain SQL outbox; in `spool` mode the spool left by a previous run drains into it. */
  static async open(database: Outbox, options: FallbackOutboxOptions): Promise<FallbackOutbox> {
    if (options.mode === 'spool') claimSpool(options.spoolDir);
    let self: FallbackOutbox | undefined;
    const spool =
      options.mode === 'spool'
        ? await FileOutbox.open(
            options.spoolDir,
            {
              publish: async (events) => {
                await database.append(events);
                self?.markUp();
              },
            },
            { fsync: options.fsync, ...(options.onError ? { onError: options.onError } : {}) },
          )
        : undefined;
    self = new FallbackOutbox(database, spool, options);
    return self;
  }

  /** Events waiting in the local spool. */
  get spooled(): number {
    return (this.spool?.backlog ?? 0) + this.spoolWrites;
  }

  get down(): boolean {
    return this.downSince !== undefined;
  }

  /** `ok`, or what is degraded (a `refusing requests` suffix makes /readyz answer not ready). */
  status(): string {
    if (this.down) {
      const plan = this.spool ? `spooling events locally (${this.spooled} waiting)` : 'refusing requests';
      return `degraded: database unreachable (${this.lastError}); ${plan}`;
    }
    return this.spooled > 0 ? `degraded: moving ${this.spooled} spooled events into the database` : 'ok';
  }

  ensureWritable(): void {
    if (this.options.mode === 'fail' && this.down) throw unavailable();
  }

  async append(events: readonly CloudEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (this.spool && !this.down && (this.spooled > 0 || this.spoolTail))
      await this.awaitSpoolTail(this.spool);
    if (this.spool && (this.down || this.spooled > 0)) return this.toSpool(this.spool, events);
    try {
      await this.database.append(events);
    } catch (error) {
      this.markDown(error);
      if (!this.spool) throw unavailable();
      await this.toSpool(this.spool, events);
    }
  }

  /**
   * The database is back and the spool drains into it. Appended behind the spool, events arriving
   * during each round would keep it from ever emptying while traffic lasts (a round that takes longer
   * than the gap between requests always finds new ones), and every event would keep taking the
   * detour. Once only its last batch is left, an append waits while the spool is moved into the
   * database (one batch, the same drain as drainSpool) and then goes there directly; a larger
   * backlog, a drain that fails or one that takes over a second leaves it appended behind as before.
   */
  private awaitSpoolTail(spool: FileOutbox): Promise<void> {
    // One wait shared by every append that comes meanwhile (the spool emptied or not): they resume in
    // the order they came, before any later one.
    if (this.spoolTail) return this.spoolTail;
    if (this.spoolWrites > 0 || spool.backlog > SPOOL_TAIL) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SPOOL_TAIL_WAIT_MS);
    });
    const drained = spool.publishPending().then(
      () => undefined,
      () => undefined, // the relay reports it and tries again; this append goes behind the spool
    );
    this.spoolTail = Promise.race([drained, giveUp]).finally(() => {
      clearTimeout(timer);
      this.spoolTail = undefined;
    });
    return this.spoolTail;
  }

  private async toSpool(spool: FileOutbox, events: readonly CloudEvent[]): Promise<void> {
    this.spoolWrites++;
    try {
      await spool.append(events);
    } finally {
      this.spoolWrites--;
    }
  }

  start(): void {
    this.spool?.start();
    this.timer = setInterval(() => void this.check(), this.options.probeMs ?? 1_000);
    this.timer.unref();
  }

  /** Publishes the spool into the database now (tests and shutdown); returns how many moved. */
  drainSpool(): Promise<number> {
    return this.spool?.publishPending() ?? Promise.resolve(0);
  }

  private async check(): Promise<void> {
    if (this.probing || (this.options.mode === 'spool' && !this.down)) return;
    this.probing = true;
    try {
      await this.options.probe();
      this.markUp();
    } catch (error) {
      this.markDown(error);
    } finally {
      this.probing = false;
    }
  }

  private markDown(error: unknown): void {
    this.lastError =
      error instanceof DatabaseUnavailableError
        ? error.reason
        : error instanceof Error
          ? error.message
          : String(error);
    if (this.downSince !== undefined) return;
    this.downSince = Date.now();
    this.options.onChange?.(true, this.lastError);
  }

  private markUp(): void {
    if (this.downSince === undefined) return;
    this.downSince = undefined;
    this.options.onChange?.(false, 'the database answers again');
    this.spool?.wake();
  }

  /**
   * Stops probing, moves what the spool holds into the database (retrying for `drainOnCloseMs` while
   * it is unreachable) and closes the spool; what the database cannot take stays on disk, and the
   * next gateway started on this folder moves it.
   */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (!this.spool) return;
    const waiting = this.spooled;
    if (waiting > 0) await this.drainBeforeExit(this.spool, waiting);
    await this.spool.close();
    rmSync(join(this.options.spoolDir, OWNER_FILE), { force: true });
  }

  private async drainBeforeExit(spool: FileOutbox, waiting: number): Promise<void> {
    const deadline = Date.now() + (this.options.drainOnCloseMs ?? 5_000);
    for (;;) {
      try {
        await spool.publishPending();
      } catch (error) {
        this.markDown(error);
      }
      if (this.spooled === 0) {
        this.options.onClose?.(`outbox spool: moved ${waiting} events into the database before exit`, 0);
        return;
      }
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    this.options.onClose?.(
      `outbox spool: ${this.spooled} events stay in ${this.options.spoolDir} (database unreachable at shutdown: ${this.lastError}); they move into the database when a gateway starts again on this data folder`,
      this.spooled,
    );
  }
}

const OWNER_FILE = 'owner';

/**
 * A spool belongs to one gateway process: two appending to one folder would each record how far
 * they got in the other's lines, and a restart would skip events. A folder whose owner is gone is
 * taken over, so a restarted gateway drains what it spooled. Only a process on this host can be
 * checked: replicas on other hosts must not share the folder (README, outboxOnDatabaseDown).
 */
function claimSpool(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, OWNER_FILE);
  let owner = '';
  try {
    owner = readFileSync(file, 'utf8').trim();
  } catch {
    // no owner yet
  }
  const [host, pid] = owner.split(' ');
  if (host === hostname() && Number(pid) !== process.pid && isRunning(Number(pid))) {
    throw new Error(
      `The outbox spool ${dir} belongs to gateway process ${pid}, which is running. Give each gateway replica its own FLOWLOOM_DATA_DIR.`,
    );
  }
  writeFileSync(file, `${hostname()} ${process.pid}`);
}

function isRunning(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function unavailable(): AppError {
  return new AppError(
    'unavailable',
    'The gateway cannot record requests right now (its database is unreachable), so it refuses them before calling a provider. Retry shortly.',
    { retryAfterSeconds: RETRY_SECONDS },
  );
}
