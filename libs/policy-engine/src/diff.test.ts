import { describe, expect, it } from 'vitest';
import { diffPolicies, formatPolicyDiff } from './diff.js';
import { compilePolicy } from './document/load.js';
import type { PolicyDocument } from './document/schema.js';

function doc(value: unknown): PolicyDocument {
  const result = compilePolicy(value);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.document;
}

const v1 = doc({
  name: 'guard',
  description: 'v1',
  rules: [
    { id: 'loops', condition: 'signals.repeated_prompts > 5', action: 'stop_job' },
    {
      id: 'slow',
      priority: 2,
      condition: 'signals.error_rate > 0.5',
      action: { type: 'throttle', delayMs: 200 },
    },
    { id: 'old', condition: 'true', action: 'alert' },
    {
      id: 'cheap',
      condition: 'request.model == "gpt-4o"',
      action: { type: 'reroute', model: 'gpt-4o-mini' },
    },
  ],
});

const v2 = doc({
  name: 'guard',
  description: 'v2',
  rules: [
    {
      id: 'slow',
      priority: 2,
      condition: 'signals.error_rate > 0.4',
      action: { type: 'throttle', delayMs: 500 },
    },
    { id: 'loops', condition: 'signals.repeated_prompts > 5', action: 'stop_job', message: 'looping' },
    { id: 'cheap', condition: 'request.model == "gpt-4o"', action: 'block' },
    { id: 'new', condition: 'budget.remaining < 1.0', action: 'block' },
  ],
});

describe('diffPolicies', () => {
  it('when rules are added, removed and changed, then each is reported with field-level detail', () => {
    const diff = diffPolicies(v1, v2);
    expect(diff.identical).toBe(false);
    expect(diff.policy).toEqual([{ path: 'description', from: 'v1', to: 'v2' }]);
    expect(diff.added.map((r) => r.id)).toEqual(['new']);
    expect(diff.removed.map((r) => r.id)).toEqual(['old']);
    expect(diff.changed).toEqual([
      {
        id: 'slow',
        changes: [
          { path: 'condition', from: 'signals.error_rate > 0.5', to: 'signals.error_rate > 0.4' },
          { path: 'action.delayMs', from: 200, to: 500 },
        ],
      },
      { id: 'loops', changes: [{ path: 'message', to: 'looping' }] },
      {
        id: 'cheap',
        changes: [
          { path: 'action', from: { type: 'reroute', model: 'gpt-4o-mini' }, to: { type: 'block' } },
          { path: 'onError', from: 'open', to: 'closed' },
        ],
      },
    ]);
    expect(diff.reordered).toEqual([
      { id: 'slow', from: 1, to: 0 },
      { id: 'loops', from: 0, to: 1 },
    ]);
  });

  it('when a document is compared with itself, then nothing differs', () => {
    const diff = diffPolicies(v1, v1);
    expect(diff).toMatchObject({
      identical: true,
      policy: [],
      added: [],
      removed: [],
      changed: [],
      reordered: [],
    });
    expect(diff.from).toBe(diff.to);
  });

  it('when formatted, then the CLI text lists each change', () => {
    const text = formatPolicyDiff(diffPolicies(v1, v2));
    expect(text.split('\n')).toEqual([
      expect.stringMatching(/^policy [0-9a-f]{12} -> [0-9a-f]{12}$/),
      '~ description: "v1" -> "v2"',
      '+ rule new [priority 0] block when budget.remaining < 1.0',
      '- rule old [priority 0] alert when true',
      '~ rule slow',
      '    condition: "signals.error_rate > 0.5" -> "signals.error_rate > 0.4"',
      '    action.delayMs: 200 -> 500',
      '~ rule loops',
      '    message: added "looping"',
      '~ rule cheap',
      '    action: {"model":"gpt-4o-mini","type":"reroute"} -> {"type":"block"}',
      '    onError: "open" -> "closed"',
      '^ rule slow moved: position 1 -> 0',
      '^ rule loops moved: position 0 -> 1',
    ]);
  });
});
