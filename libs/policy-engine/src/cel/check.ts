import { type Phase, SIGNAL_NAMES, SIGNAL_SCOPES } from '../input.js';
import { didYouMean } from '../suggest.js';
import { ENVIRONMENT, type FieldSpec, isRootName, ROOT_NAMES, type RootName } from './environment.js';
import {
  type CallExpr,
  type ComprehensionExpr,
  type ConstExpr,
  type Expr,
  type ListExpr,
  offsetOf,
  type ParsedCel,
  rootSelect,
  type SelectExpr,
  type StructExpr,
} from './expr.js';
import { compileRegex } from './regex.js';
import { fieldSource, headerKeySource, type SlotSource } from './slots.js';
import { type CelType, comparable, isNumeric, join, listOf, mapOf, T, typeName } from './types.js';

/**
 * Type-checks a parsed condition against the declared environment and collects the input paths it
 * reads. @bufbuild/cel 0.6 keeps its checker internal, so this covers what policies use: the
 * standard operators, size/contains/startsWith/endsWith/matches, conversions and the macros.
 */

export interface CheckIssue {
  readonly offset: number;
  readonly message: string;
}

export interface CheckResult {
  readonly type: CelType;
  readonly types: ReadonlyMap<bigint, CelType>;
  readonly reads: readonly SlotSource[];
  /** `post_call` when the condition reads a fact of the answer (FieldSpec.phase). */
  readonly phase: Phase;
  readonly issues: readonly CheckIssue[];
}

export function checkCondition(parsed: ParsedCel): CheckResult {
  const checker = new Checker(parsed);
  const type = checker.check(parsed.expr);
  return {
    type,
    types: checker.types,
    reads: [...checker.reads.values()],
    phase: checker.phase,
    issues: checker.issues,
  };
}

const HEADERS: FieldSpec = ENVIRONMENT.request.get('headers')!;
const CONVERSIONS: Readonly<Record<string, CelType>> = {
  int: T.int,
  uint: T.uint,
  double: T.double,
  string: T.string,
  bool: T.bool,
  bytes: T.bytes,
  dyn: T.dyn,
};
const ORDERED_KINDS = new Set(['string', 'bool', 'bytes']);

class Checker {
  readonly types = new Map<bigint, CelType>();
  readonly reads = new Map<string, SlotSource>();
  readonly issues: CheckIssue[] = [];
  phase: Phase = 'pre_call';
  private readonly scopes: Array<ReadonlyMap<string, CelType>> = [];

  constructor(private readonly parsed: ParsedCel) {}

  check(e: Expr | undefined): CelType {
    if (e === undefined) return T.dyn;
    const t = this.infer(e);
    this.types.set(e.id, t);
    return t;
  }

  private infer(e: Expr): CelType {
    const kind = e.exprKind;
    switch (kind.case) {
      case 'constExpr':
        return constType(kind.value);
      case 'identExpr':
        return this.ident(e, kind.value.name);
      case 'selectExpr':
        return this.select(e, kind.value);
      case 'callExpr':
        return this.call(e, kind.value);
      case 'listExpr':
        return this.list(kind.value);
      case 'structExpr':
        return this.struct(e, kind.value);
      case 'comprehensionExpr':
        return this.comprehension(e, kind.value);
      default:
        this.issue(e, 'empty expression');
        return T.dyn;
    }
  }

  private issue(e: Expr, message: string): void {
    this.issues.push({ offset: offsetOf(this.parsed, e), message });
  }

  private local(name: string): CelType | undefined {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const t = this.scopes[i]?.get(name);
      if (t !== undefined) return t;
    }
    return undefined;
  }

  private ident(e: Expr, name: string): CelType {
    const local = this.local(name);
    if (local !== undefined) return local;
    if (isRootName(name)) {
      const example = ENVIRONMENT[name].keys().next().value ?? '';
      this.issue(e, `"${name}" is not a value on its own; select a field, e.g. ${name}.${example}`);
    } else {
      this.issue(
        e,
        `undeclared reference to "${name}"${didYouMean(name, ROOT_NAMES)} (variables: ${ROOT_NAMES.join(', ')})`,
      );
    }
    return T.dyn;
  }

  /**
   * A root variable selection (`signals.error_rate`, `signals.key.error_rate`) unless a comprehension
   * variable shadows the root.
   */
  private rootField(e: Expr): { root: string; field: string; testOnly: boolean } | undefined {
    const s = rootSelect(e);
    if (s === undefined || !isRootName(s.root) || this.local(s.root) !== undefined) return undefined;
    return s;
  }

  private isHeaders(e: Expr | undefined): boolean {
    if (e === undefined) return false;
    const s = this.rootField(e);
    if (s?.root !== 'request' || s.field !== 'headers' || s.testOnly) return false;
    this.types.set(e.id, HEADERS.type);
    return true;
  }

  private record(read: SlotSource): void {
    if (!this.reads.has(read.path)) this.reads.set(read.path, read);
  }

  private select(e: Expr, sel: SelectExpr): CelType {
    const root = this.rootField(e);
    if (root !== undefined && isRootName(root.root)) {
      const fields = ENVIRONMENT[root.root];
      const spec = fields.get(root.field);
      if (spec === undefined) {
        this.issue(e, unknownField(root.root, root.field));
        return T.dyn;
      }
      if (spec.scope !== undefined && !root.testOnly) {
        this.issue(
          e,
          `${spec.path} is not a value on its own; select a signal, e.g. ${spec.path}.repeated_prompts, or test it with has(${spec.path})`,
        );
        return T.dyn;
      }
      this.record(fieldSource(spec));
      if (spec.phase !== undefined) this.phase = spec.phase;
      return root.testOnly ? T.bool : spec.type;
    }
    if (this.isHeaders(sel.operand)) {
      this.record(headerKeySource(HEADERS, sel.field));
      return sel.testOnly ? T.bool : T.string;
    }
    const operand = this.check(sel.operand);
    if (operand.kind === 'map') return sel.testOnly ? T.bool : operand.value;
    if (operand.kind === 'dyn') return sel.testOnly ? T.bool : T.dyn;
    this.issue(e, `type ${typeName(operand)} has no field "${sel.field}"`);
    return T.dyn;
  }

  private list(list: ListExpr): CelType {
    let elem: CelType | undefined;
    for (const element of list.elements) {
      const t = this.check(element);
      elem = elem === undefined ? t : join(elem, t);
    }
    return listOf(elem ?? T.dyn);
  }

  private struct(e: Expr, struct: StructExpr): CelType {
    if (struct.messageName !== '') {
      this.issue(e, `message construction (${struct.messageName}{…}) is not available in policies`);
      return T.dyn;
    }
    let key: CelType | undefined;
    let value: CelType | undefined;
    for (const entry of struct.entries) {
      const k = entry.keyKind.case === 'mapKey' ? this.check(entry.keyKind.value) : T.string;
      const v = this.check(entry.value);
      key = key === undefined ? k : join(key, k);
      value = value === undefined ? v : join(value, v);
    }
    return mapOf(key ?? T.dyn, value ?? T.dyn);
  }

  private comprehension(e: Expr, c: ComprehensionExpr): CelType {
    const range = this.check(c.iterRange);
    let iter: CelType = T.dyn;
    let iter2: CelType = T.dyn;
    if (range.kind === 'list') {
      iter = c.iterVar2 === '' ? range.elem : T.int;
      iter2 = range.elem;
    } else if (range.kind === 'map') {
      iter = range.key;
      iter2 = range.value;
    } else if (range.kind !== 'dyn') {
      this.issue(e, `cannot iterate over ${typeName(range)}`);
    }
    const accu = this.check(c.accuInit);
    const scope = new Map<string, CelType>([
      [c.iterVar, iter],
      [c.accuVar, accu],
    ]);
    if (c.iterVar2 !== '') scope.set(c.iterVar2, iter2);
    this.scopes.push(scope);
    this.check(c.loopCondition);
    this.check(c.loopStep);
    const result = this.check(c.result);
    this.scopes.pop();
    return result;
  }

  private noOverload(e: Expr, fn: string, args: readonly CelType[]): CelType {
    const kinds = args.map((a) => a.kind);
    const mixesNumbers = kinds.includes('double') && (kinds.includes('int') || kinds.includes('uint'));
    const hint = mixesNumbers ? '; input numbers are doubles, so write 2.0 rather than 2' : '';
    this.issue(
      e,
      `found no matching overload for '${fn}' applied to '(${args.map(typeName).join(', ')})'${hint}`,
    );
    return T.dyn;
  }

  private expectBool(e: Expr | undefined, fn: string): void {
    const t = this.check(e);
    if (t.kind !== 'bool' && t.kind !== 'dyn' && e !== undefined) {
      this.issue(e, `'${fn}' expects a bool operand, got ${typeName(t)}`);
    }
  }

  private call(e: Expr, call: CallExpr): CelType {
    const fn = call.function;
    const [a0, a1, a2] = call.args;
    switch (fn) {
      case '_&&_':
      case '_||_':
        for (const arg of call.args) this.expectBool(arg, fn);
        return T.bool;
      case '!_':
      case '@not_strictly_false':
        this.expectBool(a0, fn);
        return T.bool;
      case '_?_:_': {
        this.expectBool(a0, fn);
        const left = this.check(a1);
        const right = this.check(a2);
        if (!comparable(left, right)) return this.noOverload(e, fn, [T.bool, left, right]);
        return join(left, right);
      }
      case '_==_':
      case '_!=_': {
        const l = this.check(a0);
        const r = this.check(a1);
        return comparable(l, r) ? T.bool : this.noOverload(e, fn, [l, r]);
      }
      case '_<_':
      case '_<=_':
      case '_>_':
      case '_>=_': {
        const l = this.check(a0);
        const r = this.check(a1);
        const ok =
          l.kind === 'dyn' ||
          r.kind === 'dyn' ||
          (isNumeric(l) && isNumeric(r)) ||
          (l.kind === r.kind && ORDERED_KINDS.has(l.kind));
        return ok ? T.bool : this.noOverload(e, fn, [l, r]);
      }
      case '_+_':
      case '_-_':
      case '_*_':
      case '_/_':
      case '_%_':
        return this.arithmetic(e, fn, this.check(a0), this.check(a1));
      case '-_': {
        const t = this.check(a0);
        return t.kind === 'int' || t.kind === 'double' || t.kind === 'dyn' ? t : this.noOverload(e, fn, [t]);
      }
      case '_[_]':
        return this.index(e, a0, a1);
      case '@in':
        return this.membership(e, a0, a1);
      default:
        return this.functionCall(e, call);
    }
  }

  private arithmetic(e: Expr, fn: string, l: CelType, r: CelType): CelType {
    if (l.kind === 'dyn' || r.kind === 'dyn') return l.kind === 'dyn' ? r : l;
    const same = typeName(l) === typeName(r);
    if (same && isNumeric(l) && (fn !== '_%_' || l.kind !== 'double')) return l;
    if (same && fn === '_+_' && (l.kind === 'string' || l.kind === 'bytes' || l.kind === 'list')) return l;
    if (fn === '_+_' && l.kind === 'list' && r.kind === 'list') return listOf(T.dyn);
    return this.noOverload(e, fn, [l, r]);
  }

  private index(e: Expr, container: Expr | undefined, key: Expr | undefined): CelType {
    if (this.isHeaders(container)) {
      const k = this.check(key);
      const constKey = constString(key);
      if (constKey !== undefined) this.record(headerKeySource(HEADERS, constKey));
      else this.record(fieldSource(HEADERS));
      return k.kind === 'string' || k.kind === 'dyn'
        ? T.string
        : this.noOverload(e, '_[_]', [HEADERS.type, k]);
    }
    const c = this.check(container);
    const k = this.check(key);
    if (c.kind === 'list' && (k.kind === 'int' || k.kind === 'uint' || k.kind === 'dyn')) return c.elem;
    if (c.kind === 'map' && comparable(c.key, k)) return c.value;
    if (c.kind === 'dyn') return T.dyn;
    return this.noOverload(e, '_[_]', [c, k]);
  }

  private membership(e: Expr, item: Expr | undefined, container: Expr | undefined): CelType {
    if (this.isHeaders(container)) {
      const constKey = constString(item);
      if (constKey !== undefined) this.record(headerKeySource(HEADERS, constKey));
      else this.record(fieldSource(HEADERS));
      const k = this.check(item);
      return k.kind === 'string' || k.kind === 'dyn' ? T.bool : this.noOverload(e, '@in', [k, HEADERS.type]);
    }
    const i = this.check(item);
    const c = this.check(container);
    if (c.kind === 'list' && comparable(i, c.elem)) return T.bool;
    if (c.kind === 'map' && comparable(i, c.key)) return T.bool;
    if (c.kind === 'dyn') return T.bool;
    return this.noOverload(e, '@in', [i, c]);
  }

  /** A literal pattern is compiled now, so a bad regex is refused at push rather than failing per request. */
  private checkPattern(pattern: Expr | undefined): void {
    const text = constString(pattern);
    if (text === undefined || pattern === undefined) return;
    const compiled = compileRegex(text);
    if ('error' in compiled) this.issue(pattern, `invalid regular expression: ${compiled.error}`);
  }

  private functionCall(e: Expr, call: CallExpr): CelType {
    const fn = call.function;
    const receiver = call.target === undefined ? undefined : this.check(call.target);
    const args = call.args.map((a) => this.check(a));
    const all = receiver === undefined ? args : [receiver, ...args];
    const conversion = CONVERSIONS[fn];
    if (conversion !== undefined && receiver === undefined && args.length === 1) return conversion;
    switch (fn) {
      case 'size': {
        const [only] = all;
        if (all.length !== 1 || only === undefined) return this.noOverload(e, fn, all);
        const sized = ['string', 'bytes', 'list', 'map', 'dyn'].includes(only.kind);
        return sized ? T.int : this.noOverload(e, fn, all);
      }
      case 'contains':
      case 'startsWith':
      case 'endsWith':
      case 'matches': {
        const stringy = all.length === 2 && all.every((t) => t.kind === 'string' || t.kind === 'dyn');
        if (receiver === undefined) {
          // @bufbuild/cel (the reference engine) implements only the method form.
          this.issue(e, `write ${fn} as a method: text.${fn}(${fn === 'matches' ? 'pattern' : 'other'})`);
          return T.bool;
        }
        if (!stringy) return this.noOverload(e, fn, all);
        if (fn === 'matches') this.checkPattern(call.args[call.args.length - 1]);
        return T.bool;
      }
      default:
        this.issue(e, `undeclared function "${fn}"`);
        return T.dyn;
    }
  }
}

function unknownField(root: RootName, field: string): string {
  const fields = ENVIRONMENT[root];
  if (root !== 'signals') {
    return `${root} has no field "${field}"${didYouMean(field, fields.keys())} (known: ${[...fields.keys()].join(', ')})`;
  }
  const dot = field.indexOf('.');
  const head = dot < 0 ? field : field.slice(0, dot);
  const scopes = SIGNAL_SCOPES.join('|');
  if (dot >= 0 && (SIGNAL_SCOPES as readonly string[]).includes(head)) {
    const name = field.slice(dot + 1);
    return `unknown signal "${name}" in signals.${head}${didYouMean(name, SIGNAL_NAMES)} (known: ${SIGNAL_NAMES.join(', ')})`;
  }
  if (dot >= 0 && (SIGNAL_NAMES as readonly string[]).includes(head)) {
    return `signals.${head} is a double and has no field "${field.slice(dot + 1)}"; per-subject signals are signals.<${SIGNAL_SCOPES.join('|')}>.<name>, e.g. signals.key.${head}`;
  }
  const names = [...SIGNAL_NAMES, ...SIGNAL_SCOPES];
  return `unknown signal "${head}"${didYouMean(head, names)} (known: ${SIGNAL_NAMES.join(', ')}; per subject: signals.<${scopes}>.<name>)`;
}

/** The string of a string literal, else undefined. */
export function constString(e: Expr | undefined): string | undefined {
  const c = e?.exprKind.case === 'constExpr' ? e.exprKind.value.constantKind : undefined;
  return c?.case === 'stringValue' ? c.value : undefined;
}

function constType(c: ConstExpr): CelType {
  switch (c.constantKind.case) {
    case 'boolValue':
      return T.bool;
    case 'int64Value':
      return T.int;
    case 'uint64Value':
      return T.uint;
    case 'doubleValue':
      return T.double;
    case 'stringValue':
      return T.string;
    case 'bytesValue':
      return T.bytes;
    case 'nullValue':
      return T.null;
    default:
      return T.dyn;
  }
}
