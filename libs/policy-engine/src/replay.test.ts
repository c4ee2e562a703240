import { describe, expect, it } from 'vitest';
import type { EvaluationInput } from './input.js';
import { formatReplayReport, type ReplayRecord, replayDecisions } from './replay.js';
import { policyFrom, rulesYaml } from './test-support.js';

const baseline = policyFrom(
  rulesYaml(
    `{ id: loops, condition: 'signals.repeated_prompts > 10', action: block }`,
    `{ id: noisy, condition: 'signals.error_rate > 0.5', action: { type: throttle, delayMs: 100 } }`,
  ),
);
const candidate = policyFrom(
  rulesYaml(
    `{ id: loops-v2, condition: 'signals.repeated_prompts > 5', action: block }`,
    `{ id: noisy, condition: 'signals.error_rate > 0.5', action: { type: throttle, delayMs: 300 } }`,
    `{ id: spend, condition: 'signals.spend_per_minute > 50', action: { type: alert, channel: spend } }`,
  ),
);

const input = (repeated: number, errorRate = 0, spend = 0): EvaluationInput => ({
  request: {},
  signals: { repeated_prompts: repeated, error_rate: errorRate, spend_per_minute: spend },
});

describe('replayDecisions', () => {
  const records: ReplayRecord[] = [
    { id: 'r0', input: input(0) }, // allow -> allow, unchanged
    { id: 'r1', input: input(7) }, // allow -> block
    { id: 'r2', input: input(8) }, // allow -> block
    { id: 'r3', input: input(12) }, // block -> block (only the rule id differs: unchanged)
    { id: 'r4', input: input(0, 0.9) }, // throttle 100 -> throttle 300
    { id: 'r5', input: input(0, 0, 80) }, // allow -> allow + alert
    { id: 'r6', input: input(6) }, // allow -> block
  ];

  it('when recorded inputs are replayed, then changes are counted per transition with examples', () => {
    const report = replayDecisions(records, baseline, candidate, { maxExamples: 2 });
    expect(report).toMatchObject({ total: 7, changed: 5, unchanged: 2 });
    expect(report.transitions.map((t) => [t.from, t.to, t.count])).toEqual([
      ['allow', 'block', 3],
      ['allow', 'allow', 1],
      ['throttle', 'throttle', 1],
    ]);
    const toBlock = report.transitions[0]!;
    expect(toBlock.examples.map((e) => e.id)).toEqual(['r1', 'r2']);
    expect(toBlock.examples[0]).toMatchObject({
      index: 1,
      baseline: { verdict: 'allow', decidedBy: null },
      candidate: { verdict: 'block', decidedBy: 'loops-v2' },
    });
    expect(report.baseline.verdicts).toMatchObject({ allow: 5, block: 1, throttle: 1 });
    expect(report.candidate.verdicts).toMatchObject({ allow: 2, block: 4, throttle: 1 });
    expect(report.candidate.withAction.alert).toBe(1);
    expect(report.baseline.version).toBe(baseline.version);
  });

  it('when the same policy is replayed against itself, then nothing changes', () => {
    const report = replayDecisions(records, baseline, baseline);
    expect(report).toMatchObject({ total: 7, changed: 0, unchanged: 7, transitions: [] });
  });

  it('when recorded decisions lack inputs the candidate reads, then the gap is counted per path and said in the text', () => {
    const reader = policyFrom(
      rulesYaml(
        `{ id: errors, condition: 'signals.error_rate > 0.5', action: block }`,
        `{ id: broke, condition: 'budget.remaining < 1', action: block }`,
        `{ id: tagged, condition: 'request.headers["x-team"] == "red"', action: alert }`,
        `{ id: big, condition: 'request.estimated_tokens > 100000', action: block }`,
      ),
    );
    const bare = policyFrom(rulesYaml(`{ id: big, condition: 'request.model == "x"', action: block }`));
    const recorded: ReplayRecord[] = [
      // Recorded under a policy that read only request fields: signals, budget, headers never gathered.
      { id: 'a', input: { request: { model: 'm' } }, read: ['request.model'] },
      { id: 'b', input: { request: { model: 'm' } }, read: ['request.model'] },
      // Budget and headers were read then (no budget applied, no such header): absent, not a gap.
      {
        id: 'c',
        input: { request: { model: 'm' }, signals: { error_rate: 0.1 } },
        read: ['signals.error_rate', 'budget.remaining', 'request.headers["x-team"]'],
      },
      // No `read` given: an absent section counts as not gathered.
      {
        id: 'd',
        input: { request: { model: 'm', headers: {} }, signals: {}, budget: { remaining: 5, limit: 9 } },
      },
    ];
    const report = replayDecisions(recorded, bare, reader);
    expect(report.missingInputs).toEqual({
      decisions: 2,
      paths: [
        { path: 'budget.remaining', decisions: 2, readBy: ['candidate'] },
        { path: 'request.headers["x-team"]', decisions: 2, readBy: ['candidate'] },
        { path: 'signals.error_rate', decisions: 2, readBy: ['candidate'] },
      ],
    });
    expect(formatReplayReport(report)).toContain(
      'incomplete: 2 of 4 decisions were recorded without inputs the candidate reads (budget.remaining 2, request.headers["x-team"] 2, signals.error_rate 2)',
    );
    const complete = replayDecisions(recorded.slice(2), bare, reader);
    expect(complete.missingInputs).toEqual({ decisions: 0, paths: [] });
    expect(formatReplayReport(complete)).not.toContain('incomplete');
  });

  it('when the candidate reads signals per subject, then decisions recorded without them are a gap', () => {
    const reader = policyFrom(
      rulesYaml(`{ id: key-loop, condition: 'signals.key.repeated_prompts >= 4.0', action: block }`),
    );
    const bare = policyFrom(rulesYaml(`{ id: big, condition: 'request.model == "x"', action: block }`));
    const recorded: ReplayRecord[] = [
      // Signals of the most specific subject only: the key's window was not gathered.
      {
        id: 'a',
        input: { request: { model: 'm' }, signals: { repeated_prompts: 1 } },
        read: ['signals.repeated_prompts'],
      },
      // Gathered per subject (the key's window is always there then).
      {
        id: 'b',
        input: { request: { model: 'm' }, signals: { repeated_prompts: 0, key: { repeated_prompts: 6 } } },
        read: ['signals.key.repeated_prompts'],
      },
    ];
    const report = replayDecisions(recorded, bare, reader);
    expect(report.missingInputs).toEqual({
      decisions: 1,
      paths: [{ path: 'signals.key.repeated_prompts', decisions: 1, readBy: ['candidate'] }],
    });
  });

  it('when recorded decisions lack inputs the baseline reads, then that gap is counted as well', () => {
    const reader = policyFrom(rulesYaml(`{ id: broke, condition: 'budget.remaining < 1.0', action: block }`));
    const bare = policyFrom(rulesYaml(`{ id: big, condition: 'request.model == "x"', action: block }`));
    const recorded: ReplayRecord[] = [
      { id: 'a', input: { request: { model: 'm' } }, read: ['request.model'] },
    ];
    const report = replayDecisions(recorded, reader, bare);
    expect(report.missingInputs).toEqual({
      decisions: 1,
      paths: [{ path: 'budget.remaining', decisions: 1, readBy: ['baseline'] }],
    });
    expect(formatReplayReport(report)).toContain(
      'incomplete: 1 of 1 decisions were recorded without inputs the baseline reads (budget.remaining 1); the baseline saw them as missing',
    );
  });

  it('when a version has post-call rules, then they are replayed on the recorded answers, and answers not recorded are a gap', () => {
    const before = policyFrom(
      rulesYaml(`{ id: huge, condition: 'request.estimated_tokens > 5000.0', action: block }`),
    );
    const after = policyFrom(
      rulesYaml(
        `{ id: huge, condition: 'request.estimated_tokens > 5000.0', action: block }`,
        `{ id: long-answer, condition: 'response.output_tokens > 100.0', action: suspend_key }`,
      ),
    );
    const answered = (estimated: number, output: number): EvaluationInput => ({
      request: { estimated_tokens: estimated },
      response: { input_tokens: estimated, output_tokens: output, cost: 0.01, status: 'completed' },
    });
    const recorded: ReplayRecord[] = [
      { id: 'long', input: answered(10, 150), answered: true },
      { id: 'short', input: answered(10, 20), answered: true },
      // Refused before the call by both: no answer, and nothing to evaluate after it.
      { id: 'refused', input: { request: { estimated_tokens: 9000 } }, answered: false },
      // Recorded before answers were kept: the candidate cannot tell what it would have done.
      { id: 'old', input: { request: { estimated_tokens: 10 } } },
    ];
    const report = replayDecisions(recorded, before, after);
    expect(report).toMatchObject({ total: 6, afterCall: 2, changed: 1, unchanged: 5 });
    expect(report.transitions).toEqual([
      {
        phase: 'post_call',
        from: 'allow',
        to: 'suspend_key',
        count: 1,
        examples: [
          {
            index: 0,
            phase: 'post_call',
            id: 'long',
            baseline: { verdict: 'allow', decidedBy: null, actions: [] },
            candidate: {
              verdict: 'suspend_key',
              decidedBy: 'long-answer',
              actions: [{ type: 'suspend_key' }],
            },
          },
        ],
      },
    ]);
    expect(report.candidate.verdicts).toMatchObject({ allow: 3, block: 1 });
    expect(report.candidate.afterCall).toMatchObject({ allow: 1, suspend_key: 1 });
    expect(report.missingInputs).toEqual({
      decisions: 1,
      paths: [{ path: 'response.output_tokens', decisions: 1, readBy: ['candidate'] }],
    });
    const text = formatReplayReport(report);
    expect(text).toContain('replayed 6 decisions (2 of them after the answer): 1 would change, 5 unchanged');
    expect(text).toContain('  after the answer: allow -> suspend_key: 1');
    expect(text).toContain('allow 3, block 1; after the answer: allow 1, suspend_key 1');
    expect(text).toContain(
      'incomplete: 1 of 4 decisions were recorded without inputs the candidate reads (response.output_tokens 1)',
    );
  });

  it('when the candidate would have changed a request before the call, then its post-call outcome on the recorded answer is counted as an estimate', () => {
    const watch = `{ id: long-answer, condition: 'response.output_tokens > 100.0', action: alert }`;
    const before = policyFrom(rulesYaml(watch));
    const after = policyFrom(
      rulesYaml(
        `{ id: short-batch, condition: 'request.job == "batch"', action: { type: cap_max_tokens, value: 50 } }`,
        `{ id: no-huge, condition: 'request.estimated_tokens > 5000.0', action: block }`,
        watch,
      ),
    );
    const answered = (job: string, estimated: number): EvaluationInput => ({
      request: { job, estimated_tokens: estimated },
      response: { input_tokens: estimated, output_tokens: 150, cost: 0.01, status: 'completed' },
    });
    const recorded: ReplayRecord[] = [
      // Capped at 50 by the candidate: the 150-token answer it is judged on would not have been.
      { id: 'capped', input: answered('batch', 10), answered: true },
      { id: 'as-sent', input: answered('chat', 10), answered: true },
      // Refused by the candidate before the call: nothing after it to estimate.
      { id: 'refused', input: answered('batch', 9000), answered: true },
    ];
    const report = replayDecisions(recorded, before, after);
    expect(report).toMatchObject({ afterCall: 3, approximateAfterCall: 1 });
    expect(formatReplayReport(report)).toContain(
      'estimated: 1 of 3 decisions after the answer used the recorded answer, though the candidate would have rerouted, redacted or capped that request otherwise',
    );
    expect(replayDecisions(recorded, before, before).approximateAfterCall).toBe(0);
    expect(formatReplayReport(replayDecisions(recorded, before, before))).not.toContain('estimated:');
  });

  it('when a version refuses a request before the call, then its post-call rules do not run on that answer', () => {
    const strict = policyFrom(
      rulesYaml(
        `{ id: large, condition: 'request.estimated_tokens > 5.0', action: block }`,
        `{ id: long-answer, condition: 'response.output_tokens > 100.0', action: suspend_key }`,
      ),
    );
    const lenient = policyFrom(
      rulesYaml(`{ id: long-answer, condition: 'response.output_tokens > 100.0', action: suspend_key }`),
    );
    const input: EvaluationInput = { request: { estimated_tokens: 10 }, response: { output_tokens: 500 } };
    const report = replayDecisions([{ input, answered: true }], lenient, strict);
    expect(report.transitions.map((t) => [t.phase, t.from, t.to])).toEqual([
      ['post_call', 'suspend_key', 'allow'],
      ['pre_call', 'allow', 'block'],
    ]);
  });

  it('when a rule fails to evaluate, then the decisions with errors are counted', () => {
    const fragile = policyFrom(
      rulesYaml(`{ id: h, condition: 'request.headers["x"] == "y"', action: alert }`),
    );
    const report = replayDecisions([{ input: input(0) }, { input: input(1) }], baseline, fragile);
    expect(report.candidate.withErrors).toBe(2);
    expect(report.baseline.withErrors).toBe(0);
  });

  it('when formatted, then the CLI text shows counts and examples', () => {
    const text = formatReplayReport(replayDecisions(records, baseline, candidate, { maxExamples: 1 }));
    expect(text).toContain('replayed 7 decisions: 5 would change, 2 unchanged');
    expect(text).toContain('  allow -> block: 3');
    expect(text).toContain('      e.g. r1: default -> loops-v2');
  });
});
