import { describe, expect, it } from 'vitest';
import { AlertRateLimit } from './alert-rate-limit.js';
import type { AlertNotice } from './alerts.js';

const NOTICE: AlertNotice = {
  channel: 'ops',
  policy: 'p',
  version: 'v1',
  rule: 'r',
  mode: 'enforce',
  phase: 'pre_call',
  decisionId: 'd',
  requestId: 'q',
  keyId: 'k',
  subject: 'job/j',
  explanation: 'matched',
  inputs: {},
  thresholds: [],
  at: 0,
};

const at = (ms: number) => ({ ...NOTICE, at: ms });

describe('alert rate limit', () => {
  it('when a rule matches 1,000 times in a minute, then one post goes out at once and one summary counts all of them when the window closes', () => {
    const limit = new AlertRateLimit({ windowMs: 60_000, perWindow: 1 });
    const posted = [];
    for (let i = 0; i < 1000; i++) posted.push(...limit.offer('ops', at(i * 50), i * 50));
    expect(posted).toHaveLength(1);
    expect(posted[0]).toMatchObject({ count: 1, summary: false });
    expect(limit.nextDueAt()).toBe(60_000);
    expect(limit.due(59_999)).toEqual([]);
    const [summary, ...rest] = limit.due(60_000);
    expect(rest).toEqual([]);
    expect(summary).toMatchObject({ count: 1000, summary: true, firstAt: 0, lastAt: 999 * 50 });
    expect(summary?.notice.at).toBe(999 * 50);
    expect(limit.tracked).toBe(0);
  });

  it('when every match of a window was posted, then no summary follows', () => {
    const limit = new AlertRateLimit({ windowMs: 1000, perWindow: 3 });
    for (let i = 0; i < 3; i++) expect(limit.offer('ops', at(i), i)).toHaveLength(1);
    expect(limit.due(1000)).toEqual([]);
    expect(limit.nextDueAt()).toBeUndefined();
  });

  it('when subjects, rules or channels differ, then each has its own window', () => {
    const limit = new AlertRateLimit({ windowMs: 1000, perWindow: 1 });
    expect(limit.offer('ops', NOTICE, 0)).toHaveLength(1);
    expect(limit.offer('ops', { ...NOTICE, subject: 'job/other' }, 0)).toHaveLength(1);
    expect(limit.offer('ops', { ...NOTICE, rule: 'other' }, 0)).toHaveLength(1);
    expect(limit.offer('sec', NOTICE, 0)).toHaveLength(1);
    expect(limit.offer('ops', NOTICE, 1)).toHaveLength(0);
  });

  it('when a match arrives after its window closed and due was not called, then the summary goes out before it', () => {
    const limit = new AlertRateLimit({ windowMs: 1000, perWindow: 1 });
    limit.offer('ops', at(0), 0);
    limit.offer('ops', at(10), 10);
    const posts = limit.offer('ops', at(1500), 1500);
    expect(posts.map((p) => [p.summary, p.count])).toEqual([
      [true, 2],
      [false, 1],
    ]);
  });

  it('when it drains at shutdown, then open windows with held matches are summarized at once', () => {
    const limit = new AlertRateLimit({ windowMs: 60_000, perWindow: 1 });
    limit.offer('ops', at(0), 0);
    limit.offer('ops', at(5), 5);
    const [summary] = limit.drain(10_000);
    expect(summary).toMatchObject({ count: 2, summary: true, windowMs: 10_000 });
    expect(limit.tracked).toBe(0);
  });

  it('when more subjects than it tracks match, then the new ones share one window instead of growing without bound', () => {
    const limit = new AlertRateLimit({ windowMs: 1000, perWindow: 1, maxTracked: 2 });
    for (let i = 0; i < 50; i++) limit.offer('ops', { ...NOTICE, subject: `job/${i}` }, 0);
    expect(limit.tracked).toBe(3);
  });
});
