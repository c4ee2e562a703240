import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEvent } from '@flowloom/contracts';
import { verifyConsistency } from '@flowloom/ledger';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSigningKeyStore } from '../src/adapters/file-signing-key-store.js';
import { SqlLedgerStore } from '../src/adapters/sql-ledger-store.js';
import { AuditLedger } from '../src/app/ledger.js';
import { LocalAuditSource } from '../src/app/local-source.js';
import { verifyLog } from '../src/app/verify-log.js';
import { openTestPglite, openTestPostgres, type TestDatabase } from './databases.js';
import { tempDir } from './support.js';

// Kill -9 during heavy appends: after a restart nothing acknowledged is missing, the tree is
// consistent with the last checkpoint, and appending resumes (redeliveries skipped).

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-appender.ts', import.meta.url));

interface Crashed {
  acked: number;
  checkpoints: number[];
}

/** Runs the appender until it acknowledged `acks` batches and signed a few checkpoints, then SIGKILLs it. */
function appendThenKill(target: string, keyFile: string, acks: number): Promise<Crashed> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, target, keyFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let acked = -1;
    let count = 0;
    const checkpoints: number[] = [];
    let buffer = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the appender did not reach ${acks} acks in time:\n${stderr}`));
    }, 150_000);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, a] = line.split(' ');
        if (kind === 'ack') {
          acked = Number(a);
          count++;
        }
        if (kind === 'checkpoint') checkpoints.push(Number(a));
      }
      // Killed mid-flight: the next batch is being written while we read this one's ack.
      if (!killed && count >= acks && checkpoints.length >= 2) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.once('exit', (_code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`the appender exited by itself (${signal}):\n${stderr}`));
      else resolve({ acked, checkpoints });
    });
  });
}

async function checkRecovery(database: TestDatabase, keyFile: string, crashed: Crashed): Promise<void> {
  const store = await SqlLedgerStore.open(database.db);
  const ledger = await AuditLedger.open({
    store,
    signingKeys: new FileSigningKeyStore(keyFile),
    origin: 'crash.test/audit',
  });
  try {
    expect(ledger.size).toBeGreaterThanOrEqual(crashed.acked + 1);
    const ids = Array.from({ length: crashed.acked + 1 }, (_, i) => `crash-${i}`);
    for (let at = 0; at < ids.length; at += 1_000) {
      const present = await store.existingEventIds(ids.slice(at, at + 1_000));
      expect(present.size).toBe(Math.min(1_000, ids.length - at));
    }
    const report = await verifyLog(new LocalAuditSource(ledger, 'after crash'));
    expect(report.problems).toEqual([]);
    expect(report.latestCheckpoint?.size).toBeGreaterThanOrEqual(
      crashed.checkpoints[crashed.checkpoints.length - 1] ?? 0,
    );
    const last = (await store.latestCheckpoint()) ?? expect.fail('no checkpoint survived');
    // The producer redelivers what it may not have seen acknowledged; only new events are added.
    const redelivered = Array.from({ length: 150 }, (_, i) => {
      const n = crashed.acked - 99 + i;
      const event = createEvent('dev.flowloom.gateway.request.completed.v1', 'flowloom/gateway', {
        requestId: `crash-${n}`,
        n,
      });
      event.id = `crash-${n}`;
      return event;
    });
    const sizeBefore = ledger.size;
    const outcome = await ledger.append(redelivered);
    expect(outcome.appended).toBe(Math.max(0, crashed.acked + 51 - sizeBefore));
    const proof = await ledger.consistencyProof(last.treeSize);
    expect(verifyConsistency(last.treeSize, ledger.size, proof.proof, last.rootHash, proof.root2)).toBe(true);
  } finally {
    await ledger.close();
  }
}

describe('crash during heavy appends', () => {
  const dirs: Array<{ remove(): void }> = [];
  afterAll(() => {
    for (const dir of dirs) dir.remove();
  });

  it('when the embedded (PGlite) appender is killed -9, then after a restart nothing acknowledged is missing', async () => {
    const dir = tempDir('flowloom-crash-');
    dirs.push(dir);
    const keyFile = join(dir.path, 'signing-key');
    const dbDir = join(dir.path, 'db');
    const crashed = await appendThenKill(dbDir, keyFile, 30);
    expect(crashed.acked).toBeGreaterThanOrEqual(2_999);
    const database = await openTestPglite(dbDir);
    try {
      await checkRecovery(database, keyFile, crashed);
    } finally {
      await database.drop();
    }
  }, 240_000);

  it('when the PostgreSQL appender is killed -9, then after a restart nothing acknowledged is missing', async () => {
    const dir = tempDir('flowloom-crash-');
    dirs.push(dir);
    const keyFile = join(dir.path, 'signing-key');
    const database = await openTestPostgres();
    try {
      await SqlLedgerStore.open(database.db);
      const crashed = await appendThenKill(database.url ?? '', keyFile, 40);
      await checkRecovery(database, keyFile, crashed);
    } finally {
      await database.drop();
    }
  }, 240_000);
});
