import { parse } from '@bufbuild/cel';
import { describe, expect, it } from 'vitest';
import type { EvaluationInput } from '../input.js';
import { checkCondition } from './check.js';
import { compileFast, Unsupported } from './compile-fast.js';
import { newScratch, planInterpreted } from './interpreted.js';
import { SlotTable, type SlotValue } from './slots.js';

// The closure compiler must give @bufbuild/cel's answers: same value, or an error on both sides.
type Outcome = { value: unknown } | { error: true };

function outcome(run: () => unknown): Outcome {
  try {
    return { value: run() };
  } catch {
    return { error: true };
  }
}

const EXPRESSIONS = [
  'request.model == "gpt-4o"',
  'request.model != "gpt-4o" && caller.team == "ml"',
  'request.model.startsWith("claude") || request.model.endsWith("-mini")',
  'request.model.contains("4o")',
  'request.estimated_tokens > 1000',
  'request.estimated_tokens >= 1000.0',
  'request.estimated_tokens < 1000 && request.estimated_tokens <= 999.5',
  'request.estimated_tokens == 1000',
  'request.estimated_tokens != 1000',
  'request.estimated_tokens * 2.0 + request.max_tokens > budget.remaining',
  'request.cost / budget.limit > 0.5',
  'signals.spend_per_minute - 1.5',
  '-signals.error_rate < -0.2',
  'signals.repeated_prompts >= 5 || signals.error_rate > 0.25',
  'signals.baseline_ratio > 3.0 ? true : signals.tokens_per_minute > 1e6',
  'request.region in ["eu-west-1", "eu-central-1"]',
  'request.estimated_tokens in [1000, 2000.5, 3000]',
  'request.model in [caller.team, "gpt-4o"]',
  '!(request.stream)',
  'request.stream == true',
  'has(request.job) && request.job.startsWith("nightly-")',
  'has(request.headers.x-flowloom-job)'.replace('x-flowloom-job', 'xjob'),
  'request.headers["x-flowloom-project"] == "alpha"',
  '"x-trace" in request.headers',
  'request.headers.xjob == "a" || true',
  'request.headers.xjob == "a" && false',
  'false && request.headers["missing"] == "a"',
  'request.headers["missing"] == "a" || true',
  'size(request.model) > 5',
  'request.model.size() == 6',
  'size(request.headers) >= 2',
  '1 / 0 > 0',
  '10 % 3 == 1 && 7 / 2 == 3 && -7 / 2 == -3 && -7 % 2 == -1',
  '9223372036854775807 + 1 > 0',
  '-9223372036854775807 - 1 < 0',
  'int(request.estimated_tokens) > 10',
  'double(size(request.model)) * 1.5 > 7.0',
  'int(signals.baseline_ratio) == 3',
  'request.model + "-x" == "gpt-4o-x"',
  'caller.role < "m"',
  'request.stream < true',
  'budget.remaining < 100.0',
  'time.hour >= 9 && time.hour < 17 && time.weekday != 0',
  'request.estimated_tokens > 9007199254740993',
  'signals.error_rate == 0.1 + 0.2',
  'request.model.matches("^(gpt-4o|o4)")',
  'request.model.matches("mini$") || caller.team.matches("(?i)^ML$")',
  'request.headers["x-flowloom-project"].matches("^al")',
  'request.headers[caller.team] == "x"',
  'caller.team in request.headers',
  '1000 < request.estimated_tokens && "gpt-4o" == request.model',
  '1000 < request.estimated_tokens',
  '1000 > request.estimated_tokens',
  '999.5 <= request.estimated_tokens',
  '999.5 >= request.estimated_tokens',
  '0.5 >= signals.error_rate || request.stream != false',
  '3 <= signals.baseline_ratio && signals.baseline_ratio != 3',
  'request.region in ["eu-west-1"] || request.stream in [true]',
  'caller.role == "admin" || caller.role > "c"',
  'signals.key.repeated_prompts >= 5 && signals.repeated_prompts < 5',
  'signals.job.spend_per_minute + signals.session.spend_per_minute > 2.5',
  '3.0 < signals.key.requests_per_minute',
  'signals.key.error_rate > 0.25 || signals.session.error_rate > 0.1',
  // Presence of declared fields: answered from the input, never from the zero-valued bindings.
  'has(request.job)',
  '!has(signals.job) || has(signals.session)',
  'has(signals.key.error_rate)',
  'has(budget.remaining)',
  'has(response.output_tokens) && request.actual_tokens > 100.0',
  'response.output_tokens > 100.0 && response.status == "completed"',
  'response.cost >= 0.5 || response.finish_reason == "length" || response.usage_estimated',
];

const INPUTS: EvaluationInput[] = [
  { request: {} },
  {
    request: {
      model: 'gpt-4o',
      estimated_tokens: 1000,
      max_tokens: 512,
      cost: 0.2,
      region: 'eu-west-1',
      stream: true,
      headers: { xjob: 'a', 'x-flowloom-project': 'alpha', 'x-trace': '1' },
    },
    caller: { team: 'ml', role: 'admin' },
    signals: {
      spend_per_minute: 3,
      error_rate: 0.3,
      baseline_ratio: 3.7,
      repeated_prompts: 5,
      job: { spend_per_minute: 3, repeated_prompts: 5 },
      session: { spend_per_minute: 1, error_rate: 0.2 },
      key: { repeated_prompts: 9, requests_per_minute: 12, error_rate: 0.3 },
    },
    budget: { remaining: 50, limit: 100 },
    response: {
      input_tokens: 40,
      output_tokens: 150,
      cost: 0.75,
      status: 'completed',
      finish_reason: 'stop',
    },
    now: Date.UTC(2025, 0, 6, 10, 30),
  },
  {
    request: { model: 'claude-3-5-haiku', estimated_tokens: 999.5, job: 'nightly-7', headers: {} },
    caller: { team: 'gpt-4o', role: 'dev' },
    signals: { error_rate: Number.NaN, tokens_per_minute: 2e6, key: { requests_per_minute: 2 } },
    now: Date.UTC(2025, 0, 5, 22),
  },
  {
    request: { model: 'o4-mini', estimated_tokens: Number.POSITIVE_INFINITY, headers: { xjob: 'b' } },
    signals: { baseline_ratio: -2.5, spend_per_minute: -0 },
    budget: { remaining: 0, limit: 0 },
  },
  { request: { model: 'héllo😀', estimated_tokens: 9007199254740994, stream: false } },
  {
    request: { model: 'gpt-4o', job: 'agent-1' },
    signals: { job: { error_rate: 0.5 }, key: {} },
    response: { output_tokens: 60, status: 'cancelled', usage_estimated: true },
  },
  // Wrong runtime types: both engines must fail (or absorb the failure in && / ||) alike.
  {
    request: { model: 5, estimated_tokens: '5', stream: 'yes', region: null },
    caller: { role: 1 },
    response: { output_tokens: '9', status: 3 },
  } as unknown as EvaluationInput,
];

describe('compiled conditions agree with @bufbuild/cel', () => {
  for (const source of EXPRESSIONS) {
    it(`when evaluating ${source}, then both engines give the same outcome`, () => {
      const parsed = parse(source);
      const checked = checkCondition(parsed);
      expect(checked.issues).toEqual([]);
      const table = new SlotTable();
      const fast = compileFast(parsed.expr, checked.types, table);
      const interpreted = planInterpreted(parsed);
      for (const input of INPUTS) {
        const slots: SlotValue[] = [];
        table.fill(input, slots);
        const expected = outcome(() => interpreted(input, newScratch()));
        expect({ input, outcome: outcome(() => fast(slots, input)) }).toEqual({ input, outcome: expected });
      }
    });
  }

  it('when an expression uses a macro, a computed pattern or uint, then the closure compiler declines it', () => {
    for (const source of ['[1, 2].exists(x, x > 1)', 'request.model.matches(caller.team)', '1u < 2u']) {
      const parsed = parse(source);
      const checked = checkCondition(parsed);
      expect(() => compileFast(parsed.expr, checked.types, new SlotTable())).toThrow(Unsupported);
    }
  });
});
