import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { EventBus, EventHandler } from '@flowloom/bus';
import { type CloudEvent, createEvent } from '@flowloom/contracts';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileOutbox, type FileOutboxOptions } from '../src/adapters/file-outbox.js';
import { RecordingBus } from './recording-bus.js';

// The embedded outbox (an append-only file log) must keep the outbox contract the SQL one keeps:
// durable before append resolves, published in order, only once the bus accepted, and nothing lost
// across refusals, restarts, torn writes and concurrent publishers.

let dir: string;
const open: FileOutbox[] = [];

async function openOutbox(bus: EventBus, options: FileOutboxOptions = {}): Promise<FileOutbox> {
  const outbox = await FileOutbox.open(dir, bus, { fsync: 'never', ...options });
  open.push(outbox);
  return outbox;
}

function testEvent(n: number): CloudEvent<{ n: number }> {
  return createEvent('dev.flowloom.test.file-outbox.v1', 'flowloom/test', { n }, `test/${n}`);
}

const ids = (events: readonly CloudEvent[]) => events.map((e) => e.id);

/** Writes `events` while the bus refuses them, then closes: they are in the log, unpublished. */
async function writtenWhileBusDown(events: readonly CloudEvent[]): Promise<void> {
  const down = new RecordingBus();
  down.failAll = true;
  const outbox = await openOutbox(down);
  if (events.length > 0) await outbox.append(events);
  await outbox.close();
}

function logLines(): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.jsonl'))
    .sort()
    .flatMap((name) => readFileSync(join(dir, name), 'utf8').split('\n'))
    .filter((line) => line !== '');
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flowloom-outbox-'));
});
afterEach(async () => {
  for (const outbox of open.splice(0)) await outbox.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

describe('file outbox', () => {
  it('when an append resolves, then its events are already in the log', async () => {
    const outbox = await openOutbox(new RecordingBus());
    const events = [testEvent(1), testEvent(2)];
    await outbox.append(events);
    expect(logLines().map((line) => (JSON.parse(line) as CloudEvent).id)).toEqual(ids(events));
  });

  it('when many appends arrive at once, then every event is written once and all appends resolve', async () => {
    const outbox = await openOutbox(new RecordingBus());
    const events = Array.from({ length: 300 }, (_, i) => testEvent(i));
    await Promise.all(events.map((e) => outbox.append([e])));
    const written = logLines().map((line) => (JSON.parse(line) as CloudEvent).id);
    expect(written).toHaveLength(300);
    expect(new Set(written)).toEqual(new Set(ids(events)));
  });

  it('when pending events are published, then they go out in append order, once', async () => {
    const bus = new RecordingBus();
    const outbox = await openOutbox(bus);
    const events = Array.from({ length: 25 }, (_, i) => testEvent(i));
    for (const e of events) await outbox.append([e]);
    await Promise.all(Array.from({ length: 10 }, (_, i) => outbox.append([testEvent(100 + i)])));
    expect(await outbox.publishPending()).toBe(35);
    expect(ids(bus.accepted).slice(0, 25)).toEqual(ids(events));
    expect(ids(bus.accepted)).toEqual(logLines().map((line) => (JSON.parse(line) as CloudEvent).id));
    expect(await outbox.publishPending()).toBe(0);
  });

  it('when the bus refuses, then nothing is marked published, and a later publish delivers all in order', async () => {
    const bus = new RecordingBus();
    bus.failAll = true;
    const outbox = await openOutbox(bus);
    const events = Array.from({ length: 5 }, (_, i) => testEvent(i));
    for (const e of events) await outbox.append([e]);
    await expect(outbox.publishPending()).rejects.toThrow(/bus refused/);
    expect(outbox.backlog).toBe(5);
    bus.failAll = false;
    expect(await outbox.publishPending()).toBe(5);
    expect(ids(bus.accepted)).toEqual(ids(events));
    expect(outbox.backlog).toBe(0);
  });

  it('when the relay runs, then an append is published without being asked', async () => {
    const bus = new RecordingBus();
    const outbox = await openOutbox(bus);
    outbox.start();
    const event = testEvent(1);
    await outbox.append([event]);
    await vi.waitFor(() => expect(ids(bus.accepted)).toEqual([event.id]), { timeout: 3_000 });
  });

  it('when the outbox is closed and reopened, then what was published is not published again', async () => {
    const first = new RecordingBus();
    const outbox = await openOutbox(first);
    await outbox.append([testEvent(1), testEvent(2)]);
    await outbox.publishPending();
    await outbox.close();
    const second = new RecordingBus();
    const reopened = await openOutbox(second);
    expect(await reopened.publishPending()).toBe(0);
    expect(second.accepted).toEqual([]);
  });

  it('when the bus was down at shutdown, then the events are published, in order, after a restart', async () => {
    const events = Array.from({ length: 4 }, (_, i) => testEvent(i));
    await writtenWhileBusDown(events);
    const up = new RecordingBus();
    const reopened = await openOutbox(up);
    expect(await reopened.publishPending()).toBe(4);
    expect(ids(up.accepted)).toEqual(ids(events));
    await reopened.append([testEvent(9)]);
    await reopened.publishPending();
    expect(up.accepted.at(-1)?.data).toEqual({ n: 9 });
  });

  it('when the process dies without closing, then unpublished events are published after a restart', async () => {
    const outbox = await openOutbox(new RecordingBus());
    const events = [testEvent(1), testEvent(2), testEvent(3)];
    await outbox.append(events);
    // No close(): a crash. A new process opens the same folder.
    const bus = new RecordingBus();
    const reopened = await FileOutbox.open(dir, bus, { fsync: 'never' });
    open.push(reopened);
    await reopened.publishPending();
    expect(ids(bus.accepted)).toEqual(ids(events));
  });

  it('when the log ends in a torn line, then it is skipped and later events still go out once', async () => {
    const down = new RecordingBus();
    down.failAll = true;
    const outbox = await openOutbox(down);
    const events = [testEvent(1), testEvent(2)];
    await outbox.append(events);
    await outbox.close();
    const segment = readdirSync(dir).find((name) => name.endsWith('.jsonl'));
    if (!segment) throw new Error('no segment written');
    appendFileSync(join(dir, segment), '{"specversion":"1.0","id":"torn-wri');

    const bus = new RecordingBus();
    const reopened = await openOutbox(bus);
    expect(await reopened.publishPending()).toBe(2);
    const later = testEvent(3);
    await reopened.append([later]);
    expect(await reopened.publishPending()).toBe(1);
    expect(ids(bus.accepted)).toEqual([...ids(events), later.id]);
    await reopened.close();

    const again = new RecordingBus();
    const third = await openOutbox(again);
    expect(await third.publishPending()).toBe(0);
  });

  it('when two publishes run at once while events keep arriving, then every event is delivered once, in order', async () => {
    // The relay loop and a flush (shutdown, tests) can publish at the same time.
    const releases: Array<() => void> = [];
    const accepted: CloudEvent[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const gated: EventBus = {
      publish: (events) =>
        new Promise<void>((resolve) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          releases.push(() => {
            inFlight--;
            accepted.push(...events);
            resolve();
          });
        }),
      subscribe: async (_group: string, _handler: EventHandler) => {},
      close: async () => {},
    };
    const outbox = await openOutbox(gated);
    const events = Array.from({ length: 6 }, (_, i) => testEvent(i));

    await outbox.append(events.slice(0, 2));
    const first = outbox.publishPending();
    const second = outbox.publishPending();
    await vi.waitFor(() => expect(releases).toHaveLength(1));
    await outbox.append(events.slice(2, 4));
    releases[0]?.();
    await vi.waitFor(() => expect(releases).toHaveLength(2));
    await outbox.append(events.slice(4, 6));
    releases[1]?.();
    await vi.waitFor(() => expect(releases).toHaveLength(3));
    releases[2]?.();
    await Promise.all([first, second]);
    await outbox.publishPending();

    expect(ids(accepted)).toEqual(ids(events));
    expect(maxInFlight).toBe(1);
  });
});

describe('file outbox with a backlog larger than what it holds in memory', () => {
  const CAP = 10;
  const capped = async (bus: EventBus, segmentBytes?: number): Promise<FileOutbox> => {
    const outbox = await FileOutbox.open(dir, bus, {
      fsync: 'never',
      maxBufferedEvents: CAP,
      ...(segmentBytes ? { segmentBytes } : {}),
    });
    open.push(outbox);
    return outbox;
  };

  it('when the bus is down for longer than the cap lasts, then only the cap is held in memory and every event goes out once, in order', async () => {
    const bus = new RecordingBus();
    bus.failAll = true;
    const outbox = await capped(bus);
    const events = Array.from({ length: 57 }, (_, i) => testEvent(i));
    // Single appends, then batches that straddle the cap and a concurrent burst.
    for (const e of events.slice(0, 7)) await outbox.append([e]);
    await outbox.append(events.slice(7, 19));
    await Promise.all(events.slice(19).map((e) => outbox.append([e])));
    expect(outbox.backlog).toBe(57);
    expect(outbox.buffered).toBeLessThanOrEqual(CAP);
    await expect(outbox.publishPending()).rejects.toThrow(/bus refused/);
    bus.failAll = false;
    expect(await outbox.publishPending()).toBe(57);
    expect(ids(bus.accepted)).toEqual(logLines().map((line) => (JSON.parse(line) as CloudEvent).id));
    expect(new Set(ids(bus.accepted)).size).toBe(57);
    expect(outbox.backlog).toBe(0);
    await outbox.append([testEvent(100)]);
    expect(outbox.buffered).toBe(1);
    expect(await outbox.publishPending()).toBe(1);
  });

  it('when the spilled backlog is larger than one read of the log, then the relay hands it to the bus in full batches', async () => {
    // Each delivery costs a consumer a transaction (the audit ledger's): a read of the log holds
    // about 128 request events, and a relay catching up once published one read at a time.
    const bus = new RecordingBus();
    bus.failAll = true;
    const outbox = await capped(bus);
    const padding = 'x'.repeat(2_000);
    const events = Array.from({ length: 1_500 }, (_, i) =>
      createEvent('dev.flowloom.test.file-outbox.v1', 'flowloom/test', { n: i, padding }, `test/${i}`),
    );
    await outbox.append(events);
    expect(outbox.backlog - outbox.buffered).toBeGreaterThan(1_000);
    await expect(outbox.publishPending()).rejects.toThrow(/bus refused/);
    bus.failAll = false;
    bus.calls = 0;
    expect(await outbox.publishPending()).toBe(1_500);
    // One write past the cap is held only as positions: 1,000 read back (over 2 MB, several
    // reads of the log), then the other 500.
    expect(bus.calls).toBe(2);
    expect(ids(bus.accepted)).toEqual(ids(events));
  });

  it('when the outbox restarts halfway through a spilled backlog, then the rest goes out after the restart, in order, nothing twice', async () => {
    const first = new RecordingBus();
    first.failAll = true;
    // Small segments: the spilled backlog spans several files, read back one span at a time.
    const outbox = await capped(first, 1_500);
    const events = Array.from({ length: 60 }, (_, i) => testEvent(i));
    for (let i = 0; i < events.length; i += 3) await outbox.append(events.slice(i, i + 3));
    expect(outbox.buffered).toBeLessThanOrEqual(CAP);
    first.failAll = false;
    // The cap's events, then one span read back from the log; the third publish fails.
    first.failOn = new Set([3, 4]);
    await expect(outbox.publishPending()).rejects.toThrow(/bus refused/);
    const before = first.accepted.length;
    expect(before).toBeGreaterThan(CAP);
    expect(before).toBeLessThan(60);
    await outbox.close();
    expect(first.accepted).toHaveLength(before);

    const second = new RecordingBus();
    const reopened = await capped(second, 1_500);
    expect(reopened.backlog).toBe(60 - before);
    expect(reopened.buffered).toBeLessThanOrEqual(CAP);
    const later = Array.from({ length: 15 }, (_, i) => testEvent(100 + i));
    await reopened.append(later.slice(0, 5));
    await Promise.all([reopened.publishPending(), ...later.slice(5).map((e) => reopened.append([e]))]);
    await reopened.publishPending();
    expect([...ids(first.accepted), ...ids(second.accepted)]).toEqual([...ids(events), ...ids(later)]);
    await reopened.close();

    const third = new RecordingBus();
    expect(await (await capped(third, 1_500)).publishPending()).toBe(0);
  });

  it('when appends keep arriving while spilled events are read back, then each is delivered once, in order', async () => {
    const bus = new RecordingBus();
    bus.delayMs = 2;
    const outbox = await capped(bus, 2_000);
    const events = Array.from({ length: 200 }, (_, i) => testEvent(i));
    const publishing: Promise<number>[] = [];
    for (let i = 0; i < events.length; i += 4) {
      await outbox.append(events.slice(i, i + 2));
      void outbox.append(events.slice(i + 2, i + 4));
      publishing.push(outbox.publishPending());
    }
    await Promise.all(publishing);
    await outbox.publishPending();
    expect(ids(bus.accepted)).toEqual(ids(events));
  });
});

/** The one segment file of the test folder. */
function onlySegment(): string {
  const segments = readdirSync(dir).filter((name) => name.endsWith('.jsonl'));
  if (segments.length !== 1) throw new Error(`expected one segment, found ${segments.length}`);
  return join(dir, segments[0]!);
}

/** Replaces the text of line `index` (from 0) of the only segment, keeping its newline. */
function damageLine(index: number, replace: (line: string) => string): void {
  const path = onlySegment();
  const lines = readFileSync(path, 'utf8').split('\n');
  lines[index] = replace(lines[index]!);
  writeFileSync(path, lines.join('\n'));
}

const garbage = (line: string) => '\u0000\uffff#'.repeat(Math.ceil(line.length / 3)).slice(0, line.length);
const truncated = (line: string) => line.slice(0, Math.floor(line.length / 2));
const parsesAsEvent = (line: string) => typeof (JSON.parse(line) as CloudEvent).id === 'string';

/** The bytes `events` take as lines of the log. */
const bytesOf = (events: readonly CloudEvent[]) =>
  events.reduce((n, e) => n + Buffer.byteLength(`${JSON.stringify(e)}\n`), 0);

/** Seven events in one segment, the first five published, and the byte offset just after them. */
async function fivePublishedTwoNot(): Promise<{ events: CloudEvent[]; offset: number }> {
  const bus = new RecordingBus();
  const outbox = await openOutbox(bus);
  const events = Array.from({ length: 7 }, (_, i) => testEvent(i));
  await outbox.append(events.slice(0, 5));
  expect(await outbox.publishPending()).toBe(5);
  bus.failAll = true;
  await outbox.append(events.slice(5));
  await outbox.close();
  return { events, offset: bytesOf(events.slice(0, 5)) };
}

/** What the outbox reports: errors to retry apart from damage it set aside. */
const reported = () => {
  const errors: string[] = [];
  const damage: string[] = [];
  return {
    errors,
    damage,
    handlers: {
      onError: (error: unknown) => void errors.push(String(error)),
      onDamage: (message: string) => void damage.push(message),
    },
  };
};

describe('file outbox with damaged or torn lines', () => {
  /** Ten events written while the bus refuses them, seven of them held only as positions in the log. */
  const spilledBacklog = async () => {
    const bus = new RecordingBus();
    bus.failAll = true;
    const log = reported();
    const outbox = await openOutbox(bus, { maxBufferedEvents: 3, ...log.handlers });
    const events = Array.from({ length: 10 }, (_, i) => testEvent(i));
    for (const e of events) await outbox.append([e]);
    expect(outbox.buffered).toBe(3);
    return { bus, log, outbox, events };
  };

  it('when lines already published are damaged, then the unpublished events after them in the same segment still go out, once', async () => {
    const { events } = await fivePublishedTwoNot();
    damageLine(1, garbage);
    damageLine(2, truncated);

    const again = new RecordingBus();
    const log = reported();
    const reopened = await openOutbox(again, { ...log.handlers });
    expect(await reopened.publishPending()).toBe(2);
    expect(ids(again.accepted)).toEqual(ids(events.slice(5)));
    // Published lines are not parsed, so their damage skips nothing. Cutting a line short moved the
    // bytes after it, so the recorded position no longer fits the segment: that much is reported.
    expect(reopened.skippedLines).toBe(0);
    expect(log.errors).toEqual([]);
    expect(log.damage).toEqual([expect.stringMatching(/recorded published position .* counting its lines/)]);
  });

  it('when a line not yet published is damaged, then it is skipped and reported, and the events around it go out once', async () => {
    const events = Array.from({ length: 5 }, (_, i) => testEvent(i));
    await writtenWhileBusDown(events);
    damageLine(2, garbage);

    const bus = new RecordingBus();
    const log = reported();
    const reopened = await openOutbox(bus, { ...log.handlers });
    expect(await reopened.publishPending()).toBe(4);
    expect(reopened.skippedLines).toBe(1);
    expect(log.damage).toEqual([expect.stringMatching(/skipped 1 unreadable line/)]);
    const later = testEvent(9);
    await reopened.append([later]);
    expect(await reopened.publishPending()).toBe(1);
    expect(ids(bus.accepted)).toEqual(ids([events[0]!, events[1]!, events[3]!, events[4]!, later]));
    await reopened.close();

    const third = new RecordingBus();
    expect(await (await openOutbox(third)).publishPending()).toBe(0);
  });

  it('when a line held only as a position in the log is damaged, then the relay skips it and goes on', async () => {
    const { bus, log, outbox, events } = await spilledBacklog();
    damageLine(5, truncated);
    bus.failAll = false;

    expect(await outbox.publishPending()).toBe(9);
    expect(ids(bus.accepted)).toEqual(ids(events.filter((_, i) => i !== 5)));
    expect(outbox.skippedLines).toBe(1);
    expect(log.damage).toEqual([expect.stringMatching(/skipped 1 unreadable line/)]);
    const later = testEvent(10);
    await outbox.append([later]);
    expect(await outbox.publishPending()).toBe(1);
    expect(bus.accepted.at(-1)?.id).toBe(later.id);
  });

  it('when the log was cut short under events held only as positions, then the missing ones are reported and the relay goes on', async () => {
    const { bus, log, outbox, events } = await spilledBacklog();
    const path = onlySegment();
    const kept = readFileSync(path, 'utf8').split('\n').slice(0, 6).join('\n');
    writeFileSync(path, `${kept}\n`);
    bus.failAll = false;

    expect(await outbox.publishPending()).toBe(6);
    expect(ids(bus.accepted)).toEqual(ids(events.slice(0, 6)));
    expect(outbox.skippedLines).toBe(4);
    expect(outbox.backlog).toBe(0);
    expect(log.damage).toEqual([expect.stringMatching(/skipped 4 unreadable line/)]);
  });

  it.each([
    ['only a torn line', 0],
    ['complete lines and a torn one', 2],
  ])(
    'when the first write was torn by a crash (%s), then appends continue on a clean line and every complete event goes out once, in order',
    async (_, complete) => {
      // What a crash in the middle of the first write leaves: its first lines, then part of one.
      const events = Array.from({ length: complete + 1 }, (_, i) => testEvent(i));
      await writtenWhileBusDown([]);
      const text = events.map((e) => `${JSON.stringify(e)}\n`).join('');
      appendFileSync(onlySegment(), text.slice(0, text.length - 40));

      const stillDown = new RecordingBus();
      stillDown.failAll = true;
      const log = reported();
      const reopened = await openOutbox(stillDown, { ...log.handlers });
      expect(reopened.backlog).toBe(complete);
      const later = [testEvent(10), testEvent(11)];
      await reopened.append(later.slice(0, 1));
      await reopened.close();
      expect(logLines().every(parsesAsEvent)).toBe(true);
      expect(log.damage.filter((e) => /torn/.test(e))).toHaveLength(1);
      expect(log.errors.filter((e) => /torn/.test(e))).toEqual([]);

      const bus = new RecordingBus();
      const third = await openOutbox(bus);
      await third.append(later.slice(1));
      expect(await third.publishPending()).toBe(complete + 2);
      expect(ids(bus.accepted)).toEqual(ids([...events.slice(0, complete), ...later]));
      await third.close();
      expect(await (await openOutbox(new RecordingBus())).publishPending()).toBe(0);
    },
  );
});

describe('file outbox restarting from the recorded byte position', () => {
  /** Overwrites bytes `[from, to)` of the only segment with `fill`. */
  const overwrite = (from: number, to: number, fill: string) => {
    const path = onlySegment();
    const bytes = readFileSync(path);
    bytes.fill(fill, from, to);
    writeFileSync(path, bytes);
  };

  it('when a newline among the published lines is destroyed, then every unpublished event still goes out once, in order', async () => {
    const { events } = await fivePublishedTwoNot();
    // Bit rot merges the second and third published lines into one.
    const firstTwo = bytesOf(events.slice(0, 2)) - 1;
    overwrite(firstTwo, firstTwo + 1, ' ');

    const bus = new RecordingBus();
    const log = reported();
    const reopened = await openOutbox(bus, { ...log.handlers });
    expect(await reopened.publishPending()).toBe(2);
    const later = testEvent(7);
    await reopened.append([later]);
    expect(await reopened.publishPending()).toBe(1);
    await reopened.close();
    expect(await (await openOutbox(bus)).publishPending()).toBe(0);
    expect(ids(bus.accepted)).toEqual(ids([...events.slice(5), later]));
    expect(log.damage).toEqual([]);
    expect(log.errors).toEqual([]);
  });

  it('when the newline ending the last published line is destroyed, then the unpublished events still go out once, in order, and the damage is reported', async () => {
    const { events, offset } = await fivePublishedTwoNot();
    // The recorded byte is no longer after a newline, but the first unpublished event still starts
    // there. Counting the lines instead would merge it with the last published one and lose it.
    overwrite(offset - 1, offset, ' ');

    const bus = new RecordingBus();
    const log = reported();
    const reopened = await openOutbox(bus, { ...log.handlers });
    expect(await reopened.publishPending()).toBe(2);
    expect(ids(bus.accepted)).toEqual(ids(events.slice(5)));
    expect(reopened.skippedLines).toBe(0);
    expect(log.damage).toEqual([expect.stringContaining(`the newline before byte ${offset}`)]);
    expect(log.errors).toEqual([]);
  });

  it('when the published part cannot be read at all, then a start does not read it: nothing is reported and the rest goes out once', async () => {
    const { events, offset } = await fivePublishedTwoNot();
    // Every byte before the last published newline turned to garbage, with no line left in it: read
    // and counted, it would number the unpublished events as published; parsed, it would be reported.
    overwrite(0, offset - 1, '\u0000');

    const bus = new RecordingBus();
    const log = reported();
    const reopened = await openOutbox(bus, { ...log.handlers });
    expect(reopened.backlog).toBe(2);
    expect(await reopened.publishPending()).toBe(2);
    expect(ids(bus.accepted)).toEqual(ids(events.slice(5)));
    expect(reopened.skippedLines).toBe(0);
    expect(log.damage).toEqual([]);
    expect(log.errors).toEqual([]);
  });

  it('when the position file is in the format before byte positions, then the log is counted as before and the position is upgraded', async () => {
    const { events, offset } = await fivePublishedTwoNot();
    writeFileSync(join(dir, 'published'), '5');
    const segment = basename(onlySegment());

    const bus = new RecordingBus();
    const log = reported();
    const reopened = await openOutbox(bus, { ...log.handlers });
    expect(await reopened.publishPending()).toBe(2);
    expect(ids(bus.accepted)).toEqual(ids(events.slice(5)));
    await reopened.close();
    expect(log.damage).toEqual([]);
    const all = bytesOf(events);
    expect(offset).toBeLessThan(all);
    expect(JSON.parse(readFileSync(join(dir, 'published'), 'utf8'))).toEqual({
      seq: 7,
      segment,
      offset: all,
    });
    // The recorded segment, wholly published, was deleted on close: a start goes on from the next one
    // without counting or reporting.
    expect(readdirSync(dir).includes(segment)).toBe(false);
    const third = reported();
    expect(await (await openOutbox(new RecordingBus(), { ...third.handlers })).publishPending()).toBe(0);
    expect(third.damage).toEqual([]);
  });

  it('when the last published events were read back from the log, then the recorded position is where the last one ends', async () => {
    const bus = new RecordingBus();
    bus.failAll = true;
    const outbox = await openOutbox(bus, { maxBufferedEvents: 2 });
    const events = Array.from({ length: 6 }, (_, i) => testEvent(i));
    for (const e of events) await outbox.append([e]);
    expect(outbox.buffered).toBe(2);
    bus.failAll = false;
    expect(await outbox.publishPending()).toBe(6);
    await outbox.close();
    expect(JSON.parse(readFileSync(join(dir, 'published'), 'utf8'))).toEqual({
      seq: 6,
      segment: basename(onlySegment()),
      offset: readFileSync(onlySegment()).length,
    });
  });

  it.each([
    ['in the middle of a line', (offset: number) => offset - 3],
    ['past the end of the segment', (_: number, size: number) => size + 10],
  ])(
    'when the recorded offset points %s, then the log is counted instead and the damage is reported',
    async (_, moved) => {
      const { events, offset } = await fivePublishedTwoNot();
      const file = join(dir, 'published');
      const position = JSON.parse(readFileSync(file, 'utf8')) as {
        seq: number;
        segment: string;
        offset: number;
      };
      expect(position).toEqual({ seq: 5, segment: basename(onlySegment()), offset });
      position.offset = moved(offset, readFileSync(onlySegment()).length);
      writeFileSync(file, JSON.stringify(position));

      const bus = new RecordingBus();
      const log = reported();
      const reopened = await openOutbox(bus, { ...log.handlers });
      expect(await reopened.publishPending()).toBe(2);
      expect(ids(bus.accepted)).toEqual(ids(events.slice(5)));
      expect(log.damage).toEqual([
        expect.stringMatching(/recorded published position .* counting its lines/),
      ]);
      expect(log.errors).toEqual([]);
    },
  );
});
