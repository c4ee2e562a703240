import { describe, expect, it } from 'vitest';
import { budgetForEffort, effortForBudget, reasoningBudget, reasoningDisabled } from './reasoning.js';

describe('reasoning effort ↔ thinking budget', () => {
  it.each([
    ['minimal', 1024],
    ['low', 1024],
    ['medium', 8192],
    ['high', 24_576],
    ['xhigh', 32_768],
    ['max', 32_768],
  ] as const)('when the effort is %s, then the budget is %i tokens', (effort, budget) => {
    expect(budgetForEffort(effort)).toBe(budget);
  });

  it.each([
    [1, 'low'],
    [1024, 'low'],
    [1025, 'medium'],
    [8192, 'medium'],
    [16_000, 'high'],
    [24_576, 'high'],
    [24_577, 'xhigh'],
    [100_000, 'xhigh'],
  ] as const)('when the budget is %i tokens, then the effort is %s', (budget, effort) => {
    expect(effortForBudget(budget)).toBe(effort);
  });

  it('when an effort becomes a budget and back, then the same effort returns (minimal reads as low)', () => {
    for (const effort of ['low', 'medium', 'high', 'xhigh'] as const) {
      expect(effortForBudget(budgetForEffort(effort))).toBe(effort);
    }
  });

  it('when a configuration is read as a budget, then only budgets and thinking efforts have one', () => {
    expect(reasoningBudget({ type: 'budget', budgetTokens: 3000 })).toBe(3000);
    expect(reasoningBudget({ type: 'effort', effort: 'medium' })).toBe(8192);
    expect(reasoningBudget({ type: 'effort', effort: 'none' })).toBeUndefined();
    expect(reasoningBudget({ type: 'adaptive' })).toBeUndefined();
    expect(reasoningBudget({ type: 'disabled' })).toBeUndefined();
  });

  it('when effort none or disabled is asked, then thinking is off; otherwise it is not', () => {
    expect(reasoningDisabled({ type: 'disabled' })).toBe(true);
    expect(reasoningDisabled({ type: 'effort', effort: 'none' })).toBe(true);
    expect(reasoningDisabled({ type: 'effort', effort: 'minimal' })).toBe(false);
    expect(reasoningDisabled({ type: 'adaptive' })).toBe(false);
    expect(reasoningDisabled({ type: 'budget', budgetTokens: 1024 })).toBe(false);
  });
});
