import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { type CloudEvent, createEvent } from '@flowloom/contracts';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBus } from './kafka.js';
import { deleteTopicsUnder } from './test-topics.js';

// The shared broker is never stopped (other test files use it): "Kafka is down" is a port where
// nothing listens yet; "Kafka comes up" is a TCP relay to the real broker opening on that port. The
// broker advertises its own address, so after bootstrapping through the relay the client talks to it
// directly, as it would to a broker that just started.
const BROKERS = (process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const [brokerHost, brokerPort] = (BROKERS[0] ?? '127.0.0.1:9092').split(':') as [string, string];
const topicPrefix = `availability-${randomBytes(4).toString('hex')}`;
const closers: Array<() => Promise<unknown>> = [];

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
  await deleteTopicsUnder(topicPrefix, BROKERS);
}, 60_000);

/** A port with nothing on it (yet). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Opens `port` as a relay to the real broker. */
async function relayTo(port: number): Promise<Server> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = tcpConnect(Number(brokerPort), brokerHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return server;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('KafkaBus while the brokers are unreachable', () => {
  it('when started in the background with Kafka down, then publish fails fast naming the outage, a subscription waits, and both work once Kafka is up', {
    timeout: 90_000,
  }, async () => {
    const port = await closedPort();
    const bus = new KafkaBus({
      brokers: [`127.0.0.1:${port}`],
      clientId: topicPrefix,
      topicPrefix,
      partitions: 1,
      reconnect: { minMs: 100, maxMs: 500 },
    });
    closers.push(() => bus.close());
    let connected = 0;
    bus.onConnected(() => connected++);
    const began = Date.now();
    // The first attempt fails (nothing listens): that is no reason to stop a service.
    await bus.startInBackground();
    const job = `job/${randomBytes(4).toString('hex')}`;
    const received: CloudEvent[] = [];
    await bus.subscribeBatch('availability', async (events) => {
      received.push(...events.filter((e) => e.subject === job));
    });
    // Neither call waited for the brokers.
    expect(Date.now() - began).toBeLessThan(2_000);
    await waitFor('the first failed attempt', () => bus.health().state === 'unavailable');
    const down = bus.health();
    expect(down.reason).toContain('ECONNREFUSED');
    expect(down.target).toBe(`127.0.0.1:${port}`);
    expect(down.consumers).toEqual({ availability: expect.stringContaining('waiting for Kafka') });

    const event = (n: number) =>
      createEvent('dev.flowloom.gateway.request.completed.v1', 'flowloom/gateway', { n }, job);
    const refusedAt = Date.now();
    const refused = await bus.publish([event(0)]).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(Date.now() - refusedAt).toBeLessThan(500);
    expect(refused?.message).toMatch(/unreachable since .*FLOWLOOM_KAFKA_BROKERS/);
    expect(connected).toBe(0);

    await relayTo(port);
    await waitFor('the bus to connect', () => connected === 1);
    expect(bus.health()).toMatchObject({ state: 'connected' });
    expect(bus.health().reason).toBeUndefined();
    const sent = [event(1), event(2), event(3)];
    await bus.publish(sent);
    await waitFor('the waiting subscription to receive the events', () => received.length >= 3, 60_000);
    expect(received.map((e) => e.id)).toEqual(sent.map((e) => e.id));
    expect(bus.health().consumers).toEqual({ availability: 'consuming' });
  });

  it('when started strictly with Kafka down, then start fails naming the brokers and what to do', {
    timeout: 30_000,
  }, async () => {
    const port = await closedPort();
    const bus = new KafkaBus({ brokers: [`127.0.0.1:${port}`], clientId: topicPrefix, topicPrefix });
    closers.push(() => bus.close());
    const error = await bus.start().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toContain(`Cannot reach Kafka at 127.0.0.1:${port}`);
    expect(error?.message).toContain('npm run engines:up');
    expect(bus.health().state).toBe('unavailable');
  });
});
