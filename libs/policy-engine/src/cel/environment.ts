import { type EvaluationInput, type Phase, SIGNAL_NAMES, SIGNAL_SCOPES, type SignalScope } from '../input.js';
import { CelEvalError, describeValue, type HeaderMap, type RuntimeValue } from './runtime.js';
import { type CelType, mapOf, T } from './types.js';

/**
 * The declared environment: every variable a condition may read, its static type, and how it is
 * read from an EvaluationInput. Missing fields read as zero values so optional facts never make a
 * condition fail; a field of the wrong runtime type is an evaluation error (onError applies).
 */

export type RootName = 'request' | 'response' | 'caller' | 'signals' | 'budget' | 'time';
export const ROOT_NAMES: readonly RootName[] = ['request', 'response', 'caller', 'signals', 'budget', 'time'];

export interface FieldSpec {
  readonly path: string;
  readonly type: CelType;
  /** Throws CelEvalError when the input holds the wrong type. */
  readonly read: (input: EvaluationInput) => RuntimeValue;
  /** What `has(root.field)` answers: whether the input supplied the field. */
  readonly has: (input: EvaluationInput) => boolean;
  /**
   * Set on `signals.job`, `signals.session` and `signals.key`: not a value on their own, only a
   * presence test (`has(signals.job)`, read as that boolean) and the parent of `signals.<scope>.<name>`.
   */
  readonly scope?: SignalScope;
  /** Set on facts known only after the answer: a condition reading one is evaluated after the call. */
  readonly phase?: Extract<Phase, 'post_call'>;
}

type Facts = Readonly<Record<string, unknown>> | undefined;
type FactsGetter = (input: EvaluationInput) => Facts;

const wrongType = (path: string, expected: string, v: unknown): CelEvalError =>
  new CelEvalError(`${path}: expected ${expected} in the evaluation input, got ${describeValue(v)}`);

function stringField(root: string, name: string, get: FactsGetter): FieldSpec {
  const path = `${root}.${name}`;
  return {
    path,
    type: T.string,
    read: (input) => {
      const v = get(input)?.[name];
      if (v === undefined) return '';
      if (typeof v === 'string') return v;
      throw wrongType(path, 'a string', v);
    },
    has: (input) => get(input)?.[name] !== undefined,
  };
}

function numberField(root: string, name: string, get: FactsGetter, missing = 0): FieldSpec {
  const path = `${root}.${name}`;
  return {
    path,
    type: T.double,
    read: (input) => {
      const v = get(input)?.[name];
      if (v === undefined) return missing;
      if (typeof v === 'number') return v;
      throw wrongType(path, 'a number', v);
    },
    has: (input) => get(input)?.[name] !== undefined,
  };
}

function boolField(root: string, name: string, get: FactsGetter): FieldSpec {
  const path = `${root}.${name}`;
  return {
    path,
    type: T.bool,
    read: (input) => {
      const v = get(input)?.[name];
      if (v === undefined) return false;
      if (typeof v === 'boolean') return v;
      throw wrongType(path, 'a boolean', v);
    },
    has: (input) => get(input)?.[name] !== undefined,
  };
}

const NO_HEADERS: HeaderMap = Object.freeze({});

function headersField(get: FactsGetter): FieldSpec {
  const path = 'request.headers';
  return {
    path,
    type: mapOf(T.string, T.string),
    read: (input) => {
      const v = get(input)?.['headers'];
      if (v === undefined) return NO_HEADERS;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as HeaderMap;
      throw wrongType(path, 'an object of header names to values', v);
    },
    has: (input) => get(input)?.['headers'] !== undefined,
  };
}

// Interfaces have no index signature, so each root is widened once here for keyed access.
const request: FactsGetter = (i) => i.request as Facts;
const caller: FactsGetter = (i) => i.caller as Facts;
const signals: FactsGetter = (i) => i.signals as Facts;
const budget: FactsGetter = (i) => i.budget as Facts;
const response: FactsGetter = (i) => i.response as Facts;

const afterCall = (spec: FieldSpec): FieldSpec => ({ ...spec, phase: 'post_call' });

/** `request.actual_tokens`: the answer's input plus output tokens, so it can never disagree with them. */
function actualTokensField(): FieldSpec {
  const input = numberField('response', 'input_tokens', response);
  const output = numberField('response', 'output_tokens', response);
  return {
    path: 'request.actual_tokens',
    type: T.double,
    read: (i) => (input.read(i) as number) + (output.read(i) as number),
    has: (i) => i.response !== undefined,
    phase: 'post_call',
  };
}
const scoped =
  (scope: SignalScope): FactsGetter =>
  (i) =>
    i.signals?.[scope] as Facts;

/** `signals.<scope>`: a presence test only (see FieldSpec.scope). */
function scopeField(scope: SignalScope): FieldSpec {
  const get = scoped(scope);
  return {
    path: `signals.${scope}`,
    type: mapOf(T.string, T.double),
    read: (input) => get(input) !== undefined,
    has: (input) => get(input) !== undefined,
    scope,
  };
}

const MS_PER_HOUR = 3_600_000;
const MS_PER_DAY = 86_400_000;
const mod = (a: number, n: number): number => ((a % n) + n) % n;

function timeField(name: string, derive: (now: number) => number): FieldSpec {
  const path = `time.${name}`;
  return {
    path,
    type: T.double,
    read: (input) => {
      const now = input.now;
      if (now === undefined) throw new CelEvalError(`${path} needs "now" in the evaluation input`);
      if (typeof now !== 'number') throw wrongType('now', 'a number', now);
      return derive(now);
    },
    has: (input) => input.now !== undefined,
  };
}

function fields(list: readonly FieldSpec[]): ReadonlyMap<string, FieldSpec> {
  return new Map(list.map((f) => [f.path.slice(f.path.indexOf('.') + 1), f]));
}

export const ENVIRONMENT: Readonly<Record<RootName, ReadonlyMap<string, FieldSpec>>> = {
  request: fields([
    ...['model', 'provider', 'key', 'project', 'job', 'session', 'region'].map((n) =>
      stringField('request', n, request),
    ),
    ...['estimated_tokens', 'cost', 'max_tokens', 'tools_count'].map((n) =>
      numberField('request', n, request),
    ),
    boolField('request', 'stream', request),
    headersField(request),
    actualTokensField(),
  ]),
  // Known after the answer only: a condition that reads one is a post-call rule.
  response: fields(
    [
      ...['input_tokens', 'output_tokens', 'cached_input_tokens', 'cost'].map((n) =>
        numberField('response', n, response),
      ),
      ...['status', 'finish_reason'].map((n) => stringField('response', n, response)),
      boolField('response', 'usage_estimated', response),
    ].map(afterCall),
  ),
  caller: fields(['key_id', 'owner', 'team', 'role'].map((n) => stringField('caller', n, caller))),
  // `signals.<name>` (the most specific subject), `signals.<scope>` and `signals.<scope>.<name>`:
  // nested names are keyed "scope.name" under the root (see rootSelect).
  signals: fields([
    ...SIGNAL_NAMES.map((n) => numberField('signals', n, signals)),
    ...SIGNAL_SCOPES.flatMap((scope) => [
      scopeField(scope),
      ...SIGNAL_NAMES.map((n) => numberField(`signals.${scope}`, n, scoped(scope))),
    ]),
  ]),
  // With no budget in force nothing is "running out", hence +Infinity rather than 0.
  budget: fields(
    ['remaining', 'limit'].map((n) => numberField('budget', n, budget, Number.POSITIVE_INFINITY)),
  ),
  time: fields([
    timeField('epoch_s', (now) => now / 1000),
    // UTC, computed arithmetically so no Date is allocated per evaluation.
    timeField('hour', (now) => mod(Math.floor(now / MS_PER_HOUR), 24)),
    timeField('weekday', (now) => mod(Math.floor(now / MS_PER_DAY) + 4, 7)), // 1970-01-01 was a Thursday; 0 = Sunday
  ]),
};

export function isRootName(name: string): name is RootName {
  return (ROOT_NAMES as readonly string[]).includes(name);
}

/** Whether an input path (as in `CompiledCondition.reads`) is a fact known only after the answer. */
export function isPostCallPath(path: string): boolean {
  const dot = path.indexOf('.');
  const root = path.slice(0, dot);
  return isRootName(root) && ENVIRONMENT[root].get(path.slice(dot + 1))?.phase === 'post_call';
}
