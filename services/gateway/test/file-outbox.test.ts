import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InProcessBus } from '@flowloom/bus';
import { type CloudEvent, createEvent } from '@flowloom/contracts';
import { describe, expect, it, vi } from 'vitest';
import { FileOutbox } from '../src/adapters/file-outbox.js';
import { RecordingBus } from './recording-bus.js';

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

  it('when events keep coming while a slow consumer works, then the relay gathers them into a batch per interval', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const bus = new InProcessBus();
    const deliveries: number[] = [];
    // A consumer that pays per delivery, as the embedded ledger does: 20 ms each.
    await bus.subscribeBatch('slow', async (events) => {
      deliveries.push(events.length);
      await new Promise((r) => setTimeout(r, 20));
    });
    const outbox = await FileOutbox.open(dir, bus, { fsync: 'never', gatherMs: 100 });
    outbox.start();
    // 300 events over about 0.6 s, one every 2 ms. Rounds back to back would deliver every 20 ms
    // (about 30 deliveries); gathered, one goes out per 100 ms.
    for (let i = 0; i < 300; i++) {
      await outbox.append([event(i)]);
      await new Promise((r) => setTimeout(r, 2));
    }
    const closing = Date.now();
    await outbox.close();
    // close() does not sit out the gather interval: it publishes what is left at once.
    expect(Date.now() - closing).toBeLessThan(100 + 20 * 3);
    expect(deliveries.reduce((a, b) => a + b, 0)).toBe(300);
    expect(deliveries.length).toBeLessThanOrEqual(12);
  });

  it('when whole batches are waiting, then the relay publishes them without waiting out the interval', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const bus = new InProcessBus();
    const deliveries: number[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    await bus.subscribeBatch('gated', async (events) => {
      deliveries.push(events.length);
      // The first delivery is held while a backlog builds up behind it.
      if (deliveries.length === 1) await gate;
    });
    const outbox = await FileOutbox.open(dir, bus, { fsync: 'never', gatherMs: 60_000 });
    await outbox.append([event(0)]);
    outbox.start();
    await vi.waitFor(() => expect(deliveries).toEqual([1]));
    await outbox.append(Array.from({ length: 2_500 }, (_, i) => event(i + 1)));
    release();
    // Two whole batches (1,000 events each, the relay's batch size) go at once; the 500 left
    // gather for the interval, which close() cuts short.
    await vi.waitFor(() => expect(deliveries).toEqual([1, 1_000, 1_000]));
    await new Promise((r) => setTimeout(r, 200));
    expect(deliveries).toEqual([1, 1_000, 1_000]);
    await outbox.close();
    expect(deliveries).toEqual([1, 1_000, 1_000, 500]);
  });

  it('when events arrive while a round is out, then they go out together once the interval has passed, not at the idle poll', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const bus = new InProcessBus();
    const deliveries: string[][] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    await bus.subscribeBatch('gated', async (events) => {
      deliveries.push(events.map((e) => e.id));
      if (deliveries.length === 1) await gate;
    });
    const outbox = await FileOutbox.open(dir, bus, { fsync: 'never', gatherMs: 300 });
    const [first, second, third] = [event(1), event(2), event(3)];
    await outbox.append([first]);
    const roundStarted = Date.now();
    outbox.start();
    await vi.waitFor(() => expect(deliveries).toEqual([[first.id]]));
    // Appended while the round is out, and nothing after them to wake the relay.
    await outbox.append([second]);
    await outbox.append([third]);
    release();
    await vi.waitFor(() => expect(deliveries).toHaveLength(2), { timeout: 3_000 });
    const elapsed = Date.now() - roundStarted;
    // Paced (not at once), yet well before the relay's 1 s idle poll would have found them.
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(900);
    expect(deliveries).toEqual([[first.id], [second.id, third.id]]);
    await outbox.close();
  });

  it('when the outbox closes while the relay gathers after an append, then close returns at once, the event is published and no timer is left', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const { bus, seen } = await recorder();
    const outbox = await FileOutbox.open(dir, bus, { fsync: 'never', gatherMs: 60_000 });
    outbox.start();
    // The relay is idle, then the append wakes it into its 60 s gather.
    await new Promise((r) => setTimeout(r, 20));
    const e = event(1);
    await outbox.append([e]);
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([]);
    const closing = Date.now();
    await outbox.close();
    expect(Date.now() - closing).toBeLessThan(1_000);
    expect(seen.map((s) => s.id)).toEqual([e.id]);
    // A gather timer left behind would keep the process alive for a minute.
    expect(timers()).toBeLessThanOrEqual(before);
  });

  it('when the bus keeps failing, then the running relay backs off instead of retrying every interval, and close publishes everything at once after it recovers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const bus = new RecordingBus();
    bus.failAll = true;
    const outbox = await FileOutbox.open(dir, bus, { fsync: 'never', gatherMs: 20 });
    const events = Array.from({ length: 3 }, (_, i) => event(i));
    await outbox.append(events);
    outbox.start();
    await new Promise((r) => setTimeout(r, 1_200));
    // Tries at 0 and 0.5 s, then 1 s later; paced by the 20 ms interval it would be about 60.
    expect(bus.calls).toBeGreaterThanOrEqual(1);
    expect(bus.calls).toBeLessThanOrEqual(3);
    bus.failAll = false;
    const closing = Date.now();
    await outbox.close();
    expect(Date.now() - closing).toBeLessThan(500);
    expect(bus.accepted.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  it('when the bus stays down under traffic, then appends retry it at most once a second, and a wake-up publishes at once once it is back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    const bus = new RecordingBus();
    bus.failAll = true;
    const outbox = await FileOutbox.open(dir, bus, { fsync: 'never' });
    outbox.start();
    try {
      const events = [event(0)];
      await outbox.append(events);
      await vi.waitFor(() => expect(bus.calls).toBe(1), { timeout: 3_000 });
      // 1.5 s of requests, one every 20 ms: if each cut the back-off short, a try would follow
      // every gather interval (about 15).
      const until = Date.now() + 1_500;
      for (let i = 1; Date.now() < until; i++) {
        const e = event(i);
        events.push(e);
        await outbox.append([e]);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(bus.calls).toBeGreaterThanOrEqual(2);
      expect(bus.calls).toBeLessThanOrEqual(3);
      // The way back in (the spool's database answering again) still cuts the back-off short.
      bus.failAll = false;
      const back = Date.now();
      outbox.wake();
      await vi.waitFor(() => expect(bus.accepted).toHaveLength(events.length), { timeout: 5_000 });
      expect(Date.now() - back).toBeLessThan(500);
      expect(bus.accepted.map((e) => e.id)).toEqual(events.map((e) => e.id));
    } finally {
      await outbox.close();
    }
  });

  it('when wake() comes while a failing round is out, then the next round does not back off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    let tries = 0;
    let holdThird: (() => void) | undefined;
    const published: CloudEvent[] = [];
    // The sink of a spool: down for three tries; the third is out when it comes back (wake()).
    const sink = {
      publish: async (events: readonly CloudEvent[]): Promise<void> => {
        tries++;
        const down = tries <= 3;
        if (tries === 3)
          await new Promise<void>((r) => {
            holdThird = r;
          });
        if (down) throw new Error('database unreachable');
        published.push(...events);
      },
    };
    const outbox = await FileOutbox.open(dir, sink, { fsync: 'never', gatherMs: 50 });
    await outbox.append([event(1)]);
    outbox.start();
    await vi.waitFor(() => expect(holdThird).toBeDefined(), { timeout: 5_000 });
    // The database answers again while the third try is out: wake() finds no wait to cut short.
    outbox.wake();
    holdThird?.();
    const failedAt = Date.now();
    // Backing off after three failures would wait 2 s; woken, the relay tries again after gathering.
    await vi.waitFor(() => expect(published).toHaveLength(1), { timeout: 1_500, interval: 20 });
    expect(Date.now() - failedAt).toBeLessThan(1_500);
    await outbox.close();
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
