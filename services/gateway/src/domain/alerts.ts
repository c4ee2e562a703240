/**
 * What an enforced `alert` action tells its channel, and how it reads there: FlowLoom's own JSON
 * payload, or a one-line Slack message. Pure: the dispatcher sends what these return.
 */

export type AlertFormat = 'json' | 'slack';

export interface AlertThreshold {
  readonly path: string;
  readonly operator: string;
  readonly value: number;
}

/** One match of an alert rule on a request, as the gate decided it (enforced only). */
export interface AlertNotice {
  /** The action's channel; the configured default when it names none. */
  readonly channel: string | undefined;
  readonly policy: string;
  readonly version: string;
  readonly rule: string;
  readonly mode: string;
  readonly phase: 'pre_call' | 'post_call';
  readonly decisionId: string;
  readonly requestId: string;
  readonly keyId: string;
  readonly project?: string;
  readonly job?: string;
  readonly session?: string;
  /** The job, else session, else key the request belongs to (`job/…`): alerts are rate-limited per subject. */
  readonly subject: string;
  /** The rule's message or description. */
  readonly explanation: string;
  /** The runaway signals the decision saw, when a rule read them. */
  readonly signals?: Readonly<Record<string, number>>;
  /** The values of the paths the rule's condition read. */
  readonly inputs: Readonly<Record<string, unknown>>;
  /** The rule's comparisons against literal numbers, e.g. signals.repeated_prompts >= 5. */
  readonly thresholds: readonly AlertThreshold[];
  /** Epoch milliseconds of the decision. */
  readonly at: number;
}

/** One post: a single match, or a summary of a rule's matches for one subject within a window. */
export interface AlertPost {
  /** The latest match it stands for. */
  readonly notice: AlertNotice;
  readonly count: number;
  readonly summary: boolean;
  readonly firstAt: number;
  readonly lastAt: number;
  /** The rate-limit window, for a summary's wording. */
  readonly windowMs: number;
}

export const decisionPath = (decisionId: string): string =>
  `/api/v1/decisions/${encodeURIComponent(decisionId)}`;

function decisionUrl(decisionId: string, linkBaseUrl: string | undefined): string | undefined {
  return linkBaseUrl ? `${linkBaseUrl.replace(/\/+$/, '')}${decisionPath(decisionId)}` : undefined;
}

/** FlowLoom's own payload (`format: json`). */
export function alertJson(
  post: AlertPost,
  alertId: string,
  linkBaseUrl: string | undefined,
): Record<string, unknown> {
  const n = post.notice;
  const url = decisionUrl(n.decisionId, linkBaseUrl);
  return {
    type: 'flowloom.alert',
    alertId,
    text: summaryLine(post),
    ...alertIdentity(post),
    subject: n.subject,
    explanation: n.explanation,
    ...(n.signals ? { signals: n.signals } : {}),
    inputs: n.inputs,
    thresholds: n.thresholds,
    decisionPath: decisionPath(n.decisionId),
    ...(url ? { decisionUrl: url } : {}),
  };
}

/** Which decision a post is about and how many matches it stands for: in the payload and in its delivery event. */
export function alertIdentity(post: AlertPost) {
  const n = post.notice;
  return {
    policy: n.policy,
    version: n.version,
    rule: n.rule,
    mode: n.mode,
    phase: n.phase,
    decisionId: n.decisionId,
    requestId: n.requestId,
    keyId: n.keyId,
    ...(n.project ? { project: n.project } : {}),
    ...(n.job ? { job: n.job } : {}),
    ...(n.session ? { session: n.session } : {}),
    count: post.count,
    summary: post.summary,
    firstAt: new Date(post.firstAt).toISOString(),
    lastAt: new Date(post.lastAt).toISOString(),
  };
}

/** A Slack incoming-webhook body (`format: slack`): one readable line, the decision linked. */
export function alertSlack(post: AlertPost, linkBaseUrl: string | undefined): { text: string } {
  const n = post.notice;
  const url = decisionUrl(n.decisionId, linkBaseUrl);
  const link = url
    ? `<${url}|decision ${slackEscape(n.decisionId)}>`
    : `decision ${slackEscape(n.decisionId)}`;
  return { text: `:rotating_light: ${slackEscape(summaryLine(post))} (${link})` };
}

/** The body a channel of this format receives. */
export function alertBody(
  format: AlertFormat,
  post: AlertPost,
  alertId: string,
  linkBaseUrl: string | undefined,
): string {
  return JSON.stringify(
    format === 'slack' ? alertSlack(post, linkBaseUrl) : alertJson(post, alertId, linkBaseUrl),
  );
}

/**
 * `FlowLoom alert: policy "p" rule "r" (enforce) on job agent-7: <explanation>; signals.x=12 (>= 5) ×200 in the last minute`.
 */
export function summaryLine(post: AlertPost): string {
  const n = post.notice;
  const who = n.job ? `job ${n.job}` : n.session ? `session ${n.session}` : `key ${n.keyId}`;
  const values = n.thresholds.map((t) => {
    const seen = n.inputs[t.path] ?? n.signals?.[t.path.replace(/^signals\./, '')];
    return `${t.path}=${formatValue(seen)} (${t.operator} ${t.value})`;
  });
  const times = post.summary ? ` ×${post.count} in the last ${windowWords(post.windowMs)}` : '';
  return `FlowLoom alert: policy "${n.policy}" rule "${n.rule}" (${n.mode}) on ${who}: ${n.explanation}${values.length > 0 ? `; ${values.join(', ')}` : ''}${times}`;
}

function formatValue(value: unknown): string {
  if (typeof value === 'number') return String(Math.round(value * 1000) / 1000);
  if (value === undefined || value === null) return '?';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function windowWords(ms: number): string {
  if (ms === 60_000) return 'minute';
  if (ms % 60_000 === 0) return `${ms / 60_000} minutes`;
  return `${Math.round(ms / 1000)} s`;
}

/** Slack's mrkdwn reserves &, < and > (links and mentions): escaped so a message cannot ping or link. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** 408, 425, 429 and 5xx are worth another attempt; other refusals will not change by retrying. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}
