import type { EvaluationInput } from '../input.js';
import { constString } from './check.js';
import { ENVIRONMENT, type FieldSpec, isRootName } from './environment.js';
import {
  type CallExpr,
  type ConstExpr,
  type Expr,
  identSelect,
  rootSelect,
  type SelectExpr,
} from './expr.js';
import {
  checkedInt,
  codePointLength,
  compareDoubleInt,
  doubleToInt,
  exactDouble,
  intDivide,
  intModulo,
  primitiveEquals,
} from './numbers.js';
import { compileRegex } from './regex.js';
import { CelEvalError, type HeaderMap, lookupHeader, type RuntimeValue } from './runtime.js';
import {
  fieldSource,
  headerKeySource,
  MISSING,
  SlotFailure,
  type SlotTable,
  type SlotValue,
} from './slots.js';
import { type CelType, T } from './types.js';

/**
 * Compiles a type-checked condition into plain closures over the policy's slots. @bufbuild/cel's
 * interpreter costs ~1-3 µs per field access, too slow for 100 rules in 50 µs; these closures cost
 * nanoseconds. Anything outside the subset handled here throws Unsupported and the condition runs
 * on @bufbuild/cel instead; a differential test holds both engines to the same answers.
 */

export type Slots = readonly SlotValue[];
export type CompiledFn = (slots: Slots, input: EvaluationInput) => RuntimeValue;
type Typed<V> = (slots: Slots, input: EvaluationInput) => V;

export class Unsupported extends Error {
  override readonly name = 'Unsupported';
}

const HEADERS = ENVIRONMENT.request.get('headers')!;
const PRIMITIVE = new Set(['bool', 'int', 'double', 'string']);
/** `literal < field` is `field > literal`. */
const MIRRORED: Readonly<Record<string, string>> = {
  '_<_': '_>_',
  '_<=_': '_>=_',
  '_>_': '_<_',
  '_>=_': '_<=_',
};

function failSlot(v: SlotValue, path: string): never {
  if (v instanceof SlotFailure) throw v.toError();
  if (v === MISSING) throw new CelEvalError(`no such key: ${path}`);
  throw new CelEvalError(`${path}: unexpected ${typeof v}`);
}

export function compileFast(root: Expr, types: ReadonlyMap<bigint, CelType>, table: SlotTable): CompiledFn {
  const typeOf = (e: Expr | undefined): CelType => (e === undefined ? T.dyn : (types.get(e.id) ?? T.dyn));

  /** Reads a field's slot; the typeof test both asserts the type and keeps the load monomorphic. */
  const fieldSlot = (spec: FieldSpec): CompiledFn => {
    const k = table.indexOf(fieldSource(spec));
    const path = spec.path;
    switch (spec.type.kind) {
      case 'double':
        return (s) => {
          const v = s[k]!;
          return typeof v === 'number' ? v : failSlot(v, path);
        };
      case 'string':
        return (s) => {
          const v = s[k]!;
          return typeof v === 'string' ? v : failSlot(v, path);
        };
      case 'bool':
        return (s) => {
          const v = s[k]!;
          return typeof v === 'boolean' ? v : failSlot(v, path);
        };
      default:
        return headersSlot();
    }
  };

  const headersSlot = (): Typed<HeaderMap> => {
    const k = table.indexOf(fieldSource(HEADERS));
    return (s) => {
      const v = s[k]!;
      return typeof v === 'object' && !(v instanceof SlotFailure) && !Array.isArray(v)
        ? (v as HeaderMap)
        : failSlot(v, HEADERS.path);
    };
  };

  const headerKeySlot = (name: string, testOnly: boolean): CompiledFn => {
    const source = headerKeySource(HEADERS, name);
    const k = table.indexOf(source);
    if (testOnly) {
      return (s) => {
        const v = s[k]!;
        return v === MISSING ? false : typeof v === 'string' ? true : failSlot(v, source.path);
      };
    }
    return (s) => {
      const v = s[k]!;
      return typeof v === 'string' ? v : failSlot(v, name);
    };
  };

  const compile = (e: Expr | undefined): CompiledFn => {
    if (e === undefined) throw new Unsupported('missing operand');
    const kind = e.exprKind;
    switch (kind.case) {
      case 'constExpr': {
        const value = constValue(kind.value);
        return () => value;
      }
      case 'selectExpr':
        return select(e, kind.value);
      case 'callExpr':
        return call(kind.value);
      default:
        throw new Unsupported(kind.case ?? 'empty expression');
    }
  };

  const isHeaders = (e: Expr | undefined): boolean => {
    const s = e === undefined ? undefined : identSelect(e);
    return s?.root === 'request' && s.field === 'headers' && !s.testOnly;
  };

  /** A plain field read (`signals.error_rate`) as its slot, for the fused forms below. */
  const fieldOperand = (
    e: Expr | undefined,
  ): { k: number; path: string; kind: 'double' | 'string' | 'bool' } | undefined => {
    const sel = e === undefined ? undefined : rootSelect(e);
    if (sel === undefined || sel.testOnly || !isRootName(sel.root)) return undefined;
    const spec = ENVIRONMENT[sel.root].get(sel.field);
    const kind = spec?.type.kind;
    if (spec === undefined || (kind !== 'double' && kind !== 'string' && kind !== 'bool')) return undefined;
    return { k: table.indexOf(fieldSource(spec)), path: spec.path, kind };
  };

  /** A literal of the field's JS type (an int literal counts for a double field when exact). */
  const literalFor = (
    e: Expr | undefined,
    kind: 'double' | 'string' | 'bool',
  ): number | string | boolean | undefined => {
    const c = e?.exprKind.case === 'constExpr' ? e.exprKind.value.constantKind : undefined;
    if (kind === 'double' && c?.case === 'doubleValue') return c.value;
    if (kind === 'double' && c?.case === 'int64Value') return exactDouble(c.value);
    if (kind === 'string' && c?.case === 'stringValue') return c.value;
    if (kind === 'bool' && c?.case === 'boolValue') return c.value;
    return undefined;
  };

  /**
   * `field <op> literal` (either order) as one closure instead of three: most policy conditions
   * are conjunctions of exactly this shape. The typeof test is the same type assertion fieldSlot makes.
   */
  const fusedComparison = (
    fn: string,
    a0: Expr | undefined,
    a1: Expr | undefined,
  ): CompiledFn | undefined => {
    let field = fieldOperand(a0);
    let literal = field === undefined ? undefined : literalFor(a1, field.kind);
    let op = fn;
    if (field === undefined || literal === undefined) {
      field = fieldOperand(a1);
      literal = field === undefined ? undefined : literalFor(a0, field.kind);
      op = MIRRORED[fn] ?? fn;
    }
    if (field === undefined || literal === undefined) return undefined;
    const { k, path } = field;
    const type = field.kind === 'bool' ? 'boolean' : field.kind === 'double' ? 'number' : 'string';
    // One JS type on both sides, so JS operators order them as CEL does; typed as number for TS only.
    const c = literal as number;
    const read = (s: Slots): number => {
      const v = s[k]!;
      return typeof v === type ? (v as number) : failSlot(v, path);
    };
    switch (op) {
      case '_==_':
        return (s) => read(s) === c;
      case '_!=_':
        return (s) => read(s) !== c;
      case '_<_':
        return (s) => read(s) < c;
      case '_<=_':
        return (s) => read(s) <= c;
      case '_>_':
        return (s) => read(s) > c;
      default:
        return (s) => read(s) >= c;
    }
  };

  const select = (e: Expr, sel: SelectExpr): CompiledFn => {
    const rootSel = rootSelect(e);
    if (rootSel !== undefined && isRootName(rootSel.root)) {
      const spec = ENVIRONMENT[rootSel.root].get(rootSel.field);
      if (spec === undefined) throw new Unsupported(`unknown field ${rootSel.field}`);
      if (rootSel.testOnly) return (_s, input) => spec.has(input);
      if (spec.scope !== undefined) throw new Unsupported(`${spec.path} as a value`);
      return fieldSlot(spec);
    }
    if (isHeaders(sel.operand)) return headerKeySlot(sel.field, sel.testOnly);
    throw new Unsupported('selection on a computed value');
  };

  const logical = (fn: '_&&_' | '_||_', left: CompiledFn, right: CompiledFn): CompiledFn => {
    // CEL's && and || are commutative over errors: `false && error` and `error && false` are both false.
    const decisive = fn === '_||_';
    return (s, input) => {
      let l: RuntimeValue | undefined;
      let failure: unknown;
      try {
        l = left(s, input);
      } catch (err) {
        failure = err;
      }
      if (l === decisive) return decisive;
      const r = right(s, input);
      if (r === decisive) return decisive;
      if (failure !== undefined) throw failure;
      if (typeof l !== 'boolean' || typeof r !== 'boolean') throw new CelEvalError(`no such overload: ${fn}`);
      return !decisive;
    };
  };

  const call = (c: CallExpr): CompiledFn => {
    const [a0, a1, a2] = c.args;
    switch (c.function) {
      case '_&&_':
      case '_||_':
        return logical(c.function, compile(a0), compile(a1));
      case '!_': {
        const operand = compile(a0);
        return (s, input) => {
          const v = operand(s, input);
          if (typeof v !== 'boolean') throw new CelEvalError('no such overload: !_');
          return !v;
        };
      }
      case '_?_:_': {
        const cond = compile(a0);
        const whenTrue = compile(a1);
        const whenFalse = compile(a2);
        return (s, input) => {
          const v = cond(s, input);
          if (typeof v !== 'boolean') throw new CelEvalError('no such overload: _?_:_');
          return v ? whenTrue(s, input) : whenFalse(s, input);
        };
      }
      case '_==_':
      case '_!=_':
        return equality(c.function === '_!=_', a0, a1);
      case '_<_':
      case '_<=_':
      case '_>_':
      case '_>=_':
        return relation(c.function, a0, a1);
      case '_+_':
      case '_-_':
      case '_*_':
      case '_/_':
      case '_%_':
        return arithmetic(c.function, a0, a1);
      case '-_':
        return negate(a0);
      case '_[_]':
        return index(a0, a1);
      case '@in':
        return membership(a0, a1);
      default:
        return functionCall(c);
    }
  };

  const primitiveTypes = (a: Expr | undefined, b: Expr | undefined): [CelType, CelType] => {
    const ta = typeOf(a);
    const tb = typeOf(b);
    if (!PRIMITIVE.has(ta.kind) || !PRIMITIVE.has(tb.kind)) throw new Unsupported('non-primitive comparison');
    return [ta, tb];
  };

  /** A constant int compared with a double is folded to a double when that is exact. */
  const asDoubleOperand = (e: Expr | undefined, t: CelType): CompiledFn | undefined => {
    if (t.kind === 'double') return compile(e);
    const k = e?.exprKind;
    if (k?.case !== 'constExpr' || k.value.constantKind.case !== 'int64Value') return undefined;
    const folded = exactDouble(k.value.constantKind.value);
    return folded === undefined ? undefined : () => folded;
  };

  const equality = (negated: boolean, a0: Expr | undefined, a1: Expr | undefined): CompiledFn => {
    const fused = fusedComparison(negated ? '_!=_' : '_==_', a0, a1);
    if (fused !== undefined) return fused;
    const [ta, tb] = primitiveTypes(a0, a1);
    let l = compile(a0);
    let r = compile(a1);
    let same = ta.kind === tb.kind;
    if (!same) {
      const fl = asDoubleOperand(a0, ta);
      const fr = asDoubleOperand(a1, tb);
      if (fl !== undefined && fr !== undefined) {
        l = fl;
        r = fr;
        same = true;
      }
    }
    if (same) return negated ? (s, i) => l(s, i) !== r(s, i) : (s, i) => l(s, i) === r(s, i);
    return negated
      ? (s, i) => !primitiveEquals(l(s, i), r(s, i))
      : (s, i) => primitiveEquals(l(s, i), r(s, i));
  };

  const relation = (fn: string, a0: Expr | undefined, a1: Expr | undefined): CompiledFn => {
    const fused = fusedComparison(fn, a0, a1);
    if (fused !== undefined) return fused;
    const [ta, tb] = primitiveTypes(a0, a1);
    let l = compile(a0);
    let r = compile(a1);
    if (ta.kind !== tb.kind) {
      const fl = asDoubleOperand(a0, ta);
      const fr = asDoubleOperand(a1, tb);
      if (fl === undefined || fr === undefined) return mixedRelation(fn, l, r, ta.kind === 'double');
      l = fl;
      r = fr;
    }
    // Values of one primitive type: JS operators order them as CEL does (strings by UTF-16 unit,
    // which differs from code-point order only between astral and U+E000..U+FFFF characters).
    const lo = l as Typed<number | bigint | string | boolean>;
    const ro = r as Typed<number | bigint | string | boolean>;
    switch (fn) {
      case '_<_':
        return (s, i) => lo(s, i) < ro(s, i);
      case '_<=_':
        return (s, i) => lo(s, i) <= ro(s, i);
      case '_>_':
        return (s, i) => lo(s, i) > ro(s, i);
      default:
        return (s, i) => lo(s, i) >= ro(s, i);
    }
  };

  const mixedRelation = (fn: string, l: CompiledFn, r: CompiledFn, leftIsDouble: boolean): CompiledFn => {
    const test = (c: number): boolean => {
      if (fn === '_<_') return c < 0;
      if (fn === '_<=_') return c <= 0;
      if (fn === '_>_') return c > 0;
      return c >= 0;
    };
    return leftIsDouble
      ? (s, i) => test(compareDoubleInt(l(s, i) as number, r(s, i) as bigint))
      : (s, i) => test(-compareDoubleInt(r(s, i) as number, l(s, i) as bigint));
  };

  const arithmetic = (fn: string, a0: Expr | undefined, a1: Expr | undefined): CompiledFn => {
    const ta = typeOf(a0);
    if (ta.kind !== typeOf(a1).kind) throw new Unsupported('mixed arithmetic');
    const l = compile(a0);
    const r = compile(a1);
    if (ta.kind === 'double') {
      const ln = l as Typed<number>;
      const rn = r as Typed<number>;
      if (fn === '_+_') return (s, i) => ln(s, i) + rn(s, i);
      if (fn === '_-_') return (s, i) => ln(s, i) - rn(s, i);
      if (fn === '_*_') return (s, i) => ln(s, i) * rn(s, i);
      if (fn === '_/_') return (s, i) => ln(s, i) / rn(s, i);
    }
    if (ta.kind === 'int') {
      const li = l as Typed<bigint>;
      const ri = r as Typed<bigint>;
      if (fn === '_+_') return (s, i) => checkedInt(li(s, i) + ri(s, i));
      if (fn === '_-_') return (s, i) => checkedInt(li(s, i) - ri(s, i));
      if (fn === '_*_') return (s, i) => checkedInt(li(s, i) * ri(s, i));
      if (fn === '_/_') return (s, i) => intDivide(li(s, i), ri(s, i));
      if (fn === '_%_') return (s, i) => intModulo(li(s, i), ri(s, i));
    }
    if (ta.kind === 'string' && fn === '_+_') return (s, i) => (l(s, i) as string) + (r(s, i) as string);
    throw new Unsupported(`${fn} on ${ta.kind}`);
  };

  const negate = (a0: Expr | undefined): CompiledFn => {
    const t = typeOf(a0);
    const operand = compile(a0);
    if (t.kind === 'double') return (s, i) => -(operand(s, i) as number);
    if (t.kind === 'int') return (s, i) => checkedInt(-(operand(s, i) as bigint));
    throw new Unsupported('negation');
  };

  const index = (container: Expr | undefined, key: Expr | undefined): CompiledFn => {
    if (!isHeaders(container) || typeOf(key).kind !== 'string') throw new Unsupported('index');
    const constKey = constString(key);
    if (constKey !== undefined) return headerKeySlot(constKey, false);
    const headers = headersSlot();
    const keyFn = compile(key) as Typed<string>;
    return (s, i) => lookupHeader(headers(s, i), keyFn(s, i));
  };

  const membership = (item: Expr | undefined, container: Expr | undefined): CompiledFn => {
    const itemType = typeOf(item);
    if (isHeaders(container)) {
      if (itemType.kind !== 'string') throw new Unsupported('header membership');
      const constKey = constString(item);
      if (constKey !== undefined) return headerKeySlot(constKey, true);
      const headers = headersSlot();
      const keyFn = compile(item) as Typed<string>;
      return (s, i) => Object.hasOwn(headers(s, i), keyFn(s, i));
    }
    if (container?.exprKind.case !== 'listExpr' || !PRIMITIVE.has(itemType.kind)) {
      throw new Unsupported('membership');
    }
    const itemFn = compile(item);
    const elements = container.exprKind.value.elements;
    const constants = constantSet(elements, itemType);
    // CEL has no NaN literal, so SameValueZero (Set) and CEL equality agree on these constants.
    const field = fieldOperand(item);
    if (constants !== undefined && field !== undefined) {
      const { k, path } = field;
      const type = field.kind === 'bool' ? 'boolean' : field.kind === 'double' ? 'number' : 'string';
      return (s) => {
        const v = s[k]!;
        return typeof v === type ? constants.has(v as RuntimeValue) : failSlot(v, path);
      };
    }
    if (constants !== undefined) return (s, i) => constants.has(itemFn(s, i));
    const elementFns = elements.map((el) => {
      if (!PRIMITIVE.has(typeOf(el).kind)) throw new Unsupported('non-primitive list element');
      return compile(el);
    });
    return (s, i) => {
      const v = itemFn(s, i);
      for (const fn of elementFns) if (primitiveEquals(v, fn(s, i))) return true;
      return false;
    };
  };

  const stringMethod = (c: CallExpr, receiver: Expr, arg: Expr): CompiledFn => {
    if (typeOf(receiver).kind !== 'string' || typeOf(arg).kind !== 'string')
      throw new Unsupported(c.function);
    const str = compile(receiver) as Typed<string>;
    if (c.function === 'matches') return matches(str, arg);
    const field = fieldOperand(receiver);
    const literal = constString(arg);
    if (field !== undefined && literal !== undefined) {
      const { k, path } = field;
      const read = (s: Slots): string => {
        const v = s[k]!;
        return typeof v === 'string' ? v : failSlot(v, path);
      };
      if (c.function === 'startsWith') return (s) => read(s).startsWith(literal);
      if (c.function === 'endsWith') return (s) => read(s).endsWith(literal);
      if (c.function === 'contains') return (s) => read(s).includes(literal);
    }
    const a = compile(arg) as Typed<string>;
    if (c.function === 'startsWith') return (s, i) => str(s, i).startsWith(a(s, i));
    if (c.function === 'endsWith') return (s, i) => str(s, i).endsWith(a(s, i));
    if (c.function === 'contains') return (s, i) => str(s, i).includes(a(s, i));
    throw new Unsupported(c.function);
  };

  const matches = (subject: Typed<string>, pattern: Expr): CompiledFn => {
    const text = constString(pattern);
    if (text === undefined) throw new Unsupported('matches with a computed pattern');
    const regex = compileRegex(text);
    if ('error' in regex) throw new Unsupported('invalid pattern'); // the checker reports it
    return (s, i) => regex.test(subject(s, i));
  };

  const functionCall = (c: CallExpr): CompiledFn => {
    const [a0, a1] = c.args;
    const receiver = c.target;
    if (receiver !== undefined && a0 !== undefined && a1 === undefined) return stringMethod(c, receiver, a0);
    const only = receiver ?? a0;
    const single = receiver === undefined ? a1 === undefined && a0 !== undefined : a0 === undefined;
    if (!single) throw new Unsupported(c.function);
    const from = typeOf(only);
    if (c.function === 'size') return size(only, from);
    if (receiver !== undefined) throw new Unsupported(c.function);
    const operand = compile(only);
    if (c.function === 'double' && from.kind === 'int') return (s, i) => Number(operand(s, i) as bigint);
    if (c.function === 'double' && from.kind === 'double') return operand;
    if (c.function === 'int' && from.kind === 'double') return (s, i) => doubleToInt(operand(s, i) as number);
    if (c.function === 'int' && from.kind === 'int') return operand;
    throw new Unsupported(`${c.function}(${from.kind})`);
  };

  const size = (operand: Expr | undefined, t: CelType): CompiledFn => {
    if (isHeaders(operand)) {
      const headers = headersSlot();
      return (s, i) => BigInt(Object.keys(headers(s, i)).length);
    }
    if (t.kind === 'string') {
      const str = compile(operand) as Typed<string>;
      return (s, i) => BigInt(codePointLength(str(s, i)));
    }
    throw new Unsupported('size');
  };

  return compile(root);
}

function constValue(c: ConstExpr): RuntimeValue {
  switch (c.constantKind.case) {
    case 'boolValue':
    case 'int64Value':
    case 'doubleValue':
    case 'stringValue':
      return c.constantKind.value;
    default:
      throw new Unsupported(`constant ${c.constantKind.case ?? 'unset'}`);
  }
}

/** Constant list elements as a Set keyed the way the item will be compared, when that is exact. */
function constantSet(elements: readonly Expr[], itemType: CelType): Set<RuntimeValue> | undefined {
  const values = new Set<RuntimeValue>();
  for (const el of elements) {
    const k = el.exprKind;
    if (k.case !== 'constExpr') return undefined;
    const c = k.value.constantKind;
    if (itemType.kind === 'double' && (c.case === 'doubleValue' || c.case === 'int64Value')) {
      const n = c.case === 'doubleValue' ? c.value : exactDouble(c.value);
      if (n === undefined) return undefined;
      values.add(n);
    } else if (itemType.kind === 'int' && c.case === 'int64Value') {
      values.add(c.value);
    } else if (itemType.kind === 'string' && c.case === 'stringValue') {
      values.add(c.value);
    } else if (itemType.kind === 'bool' && c.case === 'boolValue') {
      values.add(c.value);
    } else {
      return undefined;
    }
  }
  return values;
}
