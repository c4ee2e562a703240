import { describe, expect, it } from 'vitest';
import { cutoffFor, ruleFor } from './retention.js';

describe('retention rules', () => {
  const rules = [
    { pattern: '*', days: 3650 },
    { pattern: 'dev.flowloom.gateway.*', days: 365 },
    { pattern: 'dev.flowloom.gateway.request.*', days: 90 },
    { pattern: 'dev.flowloom.gateway.request.failed.v1', days: 400 },
  ];

  it('when several rules match, then an exact type wins, else the longest prefix', () => {
    expect(ruleFor('dev.flowloom.gateway.request.failed.v1', rules)?.days).toBe(400);
    expect(ruleFor('dev.flowloom.gateway.request.completed.v1', rules)?.days).toBe(90);
    expect(ruleFor('dev.flowloom.gateway.key.changed.v1', rules)?.days).toBe(365);
    expect(ruleFor('dev.flowloom.policy.decision.v1', rules)?.days).toBe(3650);
    expect(ruleFor('dev.flowloom.policy.decision.v1', rules.slice(1))).toBeUndefined();
  });

  it('when a cutoff is computed, then it is that many days before now', () => {
    const now = new Date('2030-06-30T00:00:00Z');
    expect(cutoffFor('dev.flowloom.gateway.key.changed.v1', rules, now)?.toISOString()).toBe(
      '2029-06-30T00:00:00.000Z',
    );
    expect(cutoffFor('x', [], now)).toBeUndefined();
  });
});
