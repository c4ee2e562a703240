import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InProcessBus } from '@flowloom/bus';
import { type CloudEvent, createEvent } from '@flowloom/contracts';
import { describe, expect, it } from 'vitest';
import { FileOutbox } from '../src/adapters/file-outbox.js';

const event = (n: number): CloudEvent =>
  createEvent('dev.flowloom.gateway.request.completed.v1', 'flowloom/gateway', { n }, 'key/k');

async function recorder(): Promise<{ bus: InProcessBus; seen: CloudEvent[] }> {
  const bus = new InProcessBus();
  const seen: CloudEvent[] = [];
  await bus.subscribe('recorder', async (e) => void seen.push(e));
  return { bus, seen };
}

/**
 * Runs the writer fixture on `dir` until `count` appends were acknowledged, then kills it. With
 * `fileBlocks`, the files it writes cannot grow past that many blocks (ulimit -f).
 */
async function writeUntilKilled(
  dir: string,
  count: number,
  fileBlocks?: number,
): Promise<{ acknowledged: string[]; failed: string[] }> {
  const script = fileURLToPath(new URL('./fixtures/outbox-writer.ts', import.meta.url));
  const child = fileBlocks
    ? spawn(
        '/bin/sh',
        ['-c', `ulimit -f ${fileBlocks} && exec "$0" --import tsx "$1" "$2"`, process.execPath, script, dir],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      )
    : spawn(process.execPath, ['--import', 'tsx', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const acknowledged: string[] = [];
  const failed: string[] = [];
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) {
      if (line.startsWith('!')) failed.push(line.slice(1));
      else acknowledged.push(line);
    }
  });
  const exited = new Promise((r) => child.once('exit', r));
  await Promise.race([
    exited,
    new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (acknowledged.length >= count) {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 5);
    }),
  ]);
  await exited;
  return { acknowledged, failed };
}

describe('FileOutbox', () => {
  it('when many appends arrive at once, then all are durable, published once and in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const { bus, seen } = await recorder();
    const outbox = await FileOutbox.open(dir, bus);
    outbox.start();
    const events = Array.from({ length: 500 }, (_, i) => event(i));
    await Promise.all(events.map((e) => outbox.append([e])));
    await outbox.publishPending();
    await outbox.close();
    expect(seen.map((e) => e.id)).toEqual(events.map((e) => e.id));
    const lines = readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));
    expect(lines).toHaveLength(500);
  });

  it('when the bus fails, then events wait and are published after it recovers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const bus = new InProcessBus();
    const seen: string[] = [];
    let down = true;
    await bus.subscribe('flaky', async (e) => {
      if (down) throw new Error('audit store unavailable');
      seen.push(e.id);
    });
    const outbox = await FileOutbox.open(dir, bus);
    const e = event(1);
    await outbox.append([e]);
    await expect(outbox.publishPending()).rejects.toThrow('unavailable');
    expect(outbox.backlog).toBe(1);
    down = false;
    await outbox.publishPending();
    expect(seen).toEqual([e.id]);
    await outbox.close();
  });

  it('when the process is killed while appending, then a restart publishes every acknowledged event', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-crash-'));
    const { acknowledged } = await writeUntilKilled(dir, 2000);
    // A torn line at the end of the log is what a crash mid-write leaves behind.
    const segment = readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .sort()
      .at(-1)!;
    appendFileSync(join(dir, segment), '{"specversion":"1.0","id":"torn');
    const { bus, seen } = await recorder();
    const outbox = await FileOutbox.open(dir, bus);
    await outbox.publishPending();
    await outbox.close();
    const published = new Set(seen.map((e) => e.id));
    const missing = acknowledged.filter((id) => !published.has(id));
    expect(missing).toEqual([]);
    expect(seen.some((e) => e.id === 'torn')).toBe(false);
  });

  it('when the file system takes only part of a write, then those appends fail, and a restart publishes every acknowledged event once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-short-'));
    // A file size limit (ulimit -f, in blocks of 512 bytes here) makes the write that crosses it
    // short and the next one fail, as a full disk does.
    const { acknowledged, failed } = await writeUntilKilled(dir, 1000, 32);
    expect(failed.length).toBeGreaterThan(0);
    const { bus, seen } = await recorder();
    const outbox = await FileOutbox.open(dir, bus);
    await outbox.publishPending();
    await outbox.close();
    const published = new Set(seen.map((e) => e.id));
    expect(acknowledged.filter((id) => !published.has(id))).toEqual([]);
    expect(published.size).toBe(seen.length);
  });

  it('when a restart follows a clean shutdown, then nothing already published is published again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const first = await recorder();
    const a = await FileOutbox.open(dir, first.bus);
    await a.append([event(1), event(2)]);
    await a.publishPending();
    await a.close();
    const second = await recorder();
    const b = await FileOutbox.open(dir, second.bus);
    await b.append([event(3)]);
    await b.publishPending();
    await b.close();
    expect(first.seen).toHaveLength(2);
    expect(second.seen.map((e) => (e.data as { n: number }).n)).toEqual([3]);
  });

  it('when segments fill up, then wholly published ones are deleted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const { bus, seen } = await recorder();
    const outbox = await FileOutbox.open(dir, bus, { segmentBytes: 2_000 });
    for (let i = 0; i < 60; i++) await outbox.append([event(i)]);
    await outbox.publishPending();
    await outbox.close();
    expect(seen).toHaveLength(60);
    expect(readdirSync(dir).filter((f) => f.endsWith('.jsonl')).length).toBeLessThanOrEqual(2);
  });
});
