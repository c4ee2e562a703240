import { type AlertDelivery, createEvent, POLICY_ALERT_DELIVERY, uuidv7 } from '@flowloom/contracts';
import { AlertRateLimit } from '../domain/alert-rate-limit.js';
import {
  type AlertFormat,
  type AlertNotice,
  type AlertPost,
  alertBody,
  alertIdentity,
  isRetryableStatus,
} from '../domain/alerts.js';
import { retryDelayMs } from '../domain/backoff.js';
import type { AlertAttempt, AlertMetrics, AlertOutcome, AlertTransport } from '../ports/alerts.js';
import type { Outbox } from '../ports/outbox.js';

export interface AlertDispatcherOptions {
  transport: AlertTransport;
  /** Configured channels and their formats. */
  channels: ReadonlyMap<string, AlertFormat>;
  outbox: Outbox;
  metrics: AlertMetrics;
  /** Event source of the delivery events. */
  source: string;
  defaultChannel?: string;
  linkBaseUrl?: string;
  queueSize: number;
  timeoutMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  windowMs: number;
  perWindow: number;
  /** A problem an operator should hear of (an unconfigured channel, an event that could not be recorded). */
  onWarning?: (message: string) => void;
  now?: () => number;
  random?: () => number;
}

/** What the policy gate hands enforced alerts to. Never blocks and never throws. */
export interface AlertSink {
  notify(notice: AlertNotice): void;
}

interface Queued {
  readonly post: AlertPost;
  readonly alertId: string;
}

interface Channel {
  readonly name: string;
  readonly format: AlertFormat;
  readonly queue: Queued[];
  running: Promise<void> | undefined;
}

/**
 * Delivers enforced alerts in the background: rate-limited per channel, rule and subject, queued per
 * channel (bounded, dropping the oldest), posted with retries (jittered back-off honouring
 * retry-after, a timeout per attempt). Every outcome becomes a `policy.alert.delivery` event and a
 * count in `flowloom_alerts_total`; the request that matched never waits for it.
 */
export class AlertDispatcher implements AlertSink {
  private readonly limit: AlertRateLimit;
  private readonly channels = new Map<string, Channel>();
  private readonly now: () => number;
  private readonly stop = new AbortController();
  private readonly recording = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly warned = new Set<string>();

  constructor(private readonly options: AlertDispatcherOptions) {
    this.now = options.now ?? Date.now;
    this.limit = new AlertRateLimit({ windowMs: options.windowMs, perWindow: options.perWindow });
    for (const [name, format] of options.channels)
      this.channels.set(name, { name, format, queue: [], running: undefined });
  }

  notify(notice: AlertNotice): void {
    if (this.closed) return;
    const channel = notice.channel ?? this.options.defaultChannel;
    // An alert without a channel and no default is recorded by its intervention event only.
    if (channel === undefined) return;
    const posts = this.limit.offer(channel, notice, this.now());
    if (posts.length === 0) this.options.metrics.count(channel, 'suppressed');
    for (const post of posts) this.enqueue(channel, post);
    this.schedule();
  }

  /**
   * Sends what is pending (open windows' summaries included) for up to `graceMs`, then gives up:
   * what is left is recorded as dropped. Resolves once every delivery event is in the outbox.
   */
  async close(graceMs = 5_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const post of this.limit.drain(this.now()))
      this.enqueue(channelOf(post, this.options.defaultChannel), post);
    const running = [...this.channels.values()].map((c) => c.running).filter((r) => r !== undefined);
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(running),
      new Promise<void>((resolve) => {
        grace = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(grace);
    this.stop.abort();
    await Promise.all(running);
    for (const c of this.channels.values())
      for (const item of c.queue.splice(0))
        this.record(
          c.name,
          c.format,
          item,
          'dropped',
          0,
          undefined,
          'the gateway shut down before it was sent',
        );
    while (this.recording.size > 0) await Promise.all([...this.recording]);
  }

  private enqueue(name: string, post: AlertPost): void {
    const alertId = uuidv7(this.now());
    const channel = this.channels.get(name);
    if (!channel) {
      this.record(
        name,
        undefined,
        { post, alertId },
        'unconfigured',
        0,
        undefined,
        `no channel "${name}" under alerts.channels in flowloom.yaml`,
      );
      if (!this.warned.has(name)) {
        this.warned.add(name);
        this.options.onWarning?.(
          `policy "${post.notice.policy}" rule "${post.notice.rule}" alerts channel "${name}", which is not configured: the alert is recorded but sent nowhere. Fix: add it under alerts.channels in flowloom.yaml.`,
        );
      }
      return;
    }
    if (channel.queue.length >= this.options.queueSize) {
      const oldest = channel.queue.shift();
      if (oldest)
        this.record(
          name,
          channel.format,
          oldest,
          'dropped',
          0,
          undefined,
          `the queue of channel "${name}" was full (alerts.queueSize ${this.options.queueSize}); the oldest post was dropped`,
        );
    }
    channel.queue.push({ post, alertId });
    this.kick(channel);
  }

  private kick(channel: Channel): void {
    if (channel.running || this.stop.signal.aborted) return;
    channel.running = this.work(channel).finally(() => {
      channel.running = undefined;
      // A post queued between the worker's last look and now.
      if (channel.queue.length > 0) this.kick(channel);
    });
  }

  /** One post at a time per channel, so a slow or dead channel holds up only its own alerts. */
  private async work(channel: Channel): Promise<void> {
    for (;;) {
      const item = channel.queue.shift();
      if (!item) return;
      if (this.stop.signal.aborted) {
        channel.queue.unshift(item);
        return;
      }
      await this.deliver(channel, item);
    }
  }

  private async deliver(channel: Channel, item: Queued): Promise<void> {
    const body = alertBody(channel.format, item.post, item.alertId, this.options.linkBaseUrl);
    let last: AlertAttempt | undefined;
    let attempt = 0;
    while (attempt < this.options.maxAttempts) {
      attempt++;
      last = await this.options.transport.post(channel.name, body, this.options.timeoutMs, this.stop.signal);
      if (last.kind === 'http' && last.status >= 200 && last.status < 300) {
        this.record(channel.name, channel.format, item, 'delivered', attempt, last.status, undefined);
        return;
      }
      if (last.kind === 'http' && !isRetryableStatus(last.status)) break;
      if (attempt >= this.options.maxAttempts || this.stop.signal.aborted) break;
      const wait = retryDelayMs(
        attempt,
        { baseMs: this.options.retryBaseMs, maxMs: this.options.retryMaxMs },
        last.kind === 'http' ? last.retryAfterMs : undefined,
        this.options.random,
      );
      if (!(await this.sleep(wait))) break;
    }
    const status = last?.kind === 'http' ? last.status : undefined;
    this.record(channel.name, channel.format, item, 'failed', attempt, status, describe(last, attempt));
  }

  /** Waits unless the dispatcher is stopping; false when it was. */
  private sleep(ms: number): Promise<boolean> {
    const signal = this.stop.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Posts the summaries of windows as they close (a timer that never keeps the process alive). */
  private schedule(): void {
    if (this.timer || this.closed) return;
    const next = this.limit.nextDueAt();
    if (next === undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        for (const post of this.limit.due(this.now()))
          this.enqueue(channelOf(post, this.options.defaultChannel), post);
        this.schedule();
      },
      Math.max(0, next - this.now()),
    );
    this.timer.unref();
  }

  private record(
    channel: string,
    format: AlertFormat | undefined,
    item: Queued,
    outcome: Exclude<AlertOutcome, 'suppressed'>,
    attempts: number,
    status: number | undefined,
    error: string | undefined,
  ): void {
    this.options.metrics.count(channel, outcome);
    const n = item.post.notice;
    const data: AlertDelivery = {
      alertId: item.alertId,
      channel,
      outcome,
      ...(format ? { format } : {}),
      ...alertIdentity(item.post),
      attempts,
      ...(status !== undefined ? { status } : {}),
      ...(error ? { error } : {}),
    };
    const done: Promise<void> = this.options.outbox
      .append([createEvent(POLICY_ALERT_DELIVERY, this.options.source, data, n.subject)])
      .catch((err: unknown) => {
        this.options.onWarning?.(
          `alert ${item.alertId} (channel "${channel}", ${outcome}) could not be recorded: ${err instanceof Error ? err.message : String(err)}`,
        );
      })
      .finally(() => this.recording.delete(done));
    this.recording.add(done);
  }
}

/** The channel a rate-limit summary goes to: the one its notices named, else the default. */
function channelOf(post: AlertPost, defaultChannel: string | undefined): string {
  return post.notice.channel ?? defaultChannel ?? '';
}

function describe(last: AlertAttempt | undefined, attempts: number): string {
  const tries = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
  if (!last) return `not sent (${tries})`;
  if (last.kind === 'timeout') return `no answer within the timeout (alerts.timeoutMs) after ${tries}`;
  if (last.kind === 'connection') return `could not connect (${last.code}) after ${tries}`;
  return isRetryableStatus(last.status)
    ? `the channel answered HTTP ${last.status} after ${tries}`
    : `the channel refused it with HTTP ${last.status} (not retried: check the URL and token)`;
}
