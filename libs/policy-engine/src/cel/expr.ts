import type { parse } from '@bufbuild/cel';

// The AST types come from @bufbuild/cel-spec, which is not our direct dependency;
// deriving them from parse() keeps us on @bufbuild/cel's public surface only.
export type ParsedCel = ReturnType<typeof parse>;
export type Expr = ParsedCel['expr'];
export type ExprKind = Expr['exprKind'];
export type CallExpr = Extract<ExprKind, { case: 'callExpr' }>['value'];
export type SelectExpr = Extract<ExprKind, { case: 'selectExpr' }>['value'];
export type ConstExpr = Extract<ExprKind, { case: 'constExpr' }>['value'];
export type ListExpr = Extract<ExprKind, { case: 'listExpr' }>['value'];
export type StructExpr = Extract<ExprKind, { case: 'structExpr' }>['value'];
export type ComprehensionExpr = Extract<ExprKind, { case: 'comprehensionExpr' }>['value'];

/** Offset of an expression node in the condition text (0 when the parser recorded none). */
export function offsetOf(parsed: ParsedCel, e: Expr): number {
  return parsed.sourceInfo?.positions[e.id.toString()] ?? 0;
}

/** The `root.field` pair when `e` is exactly a field selection on an identifier. */
export function identSelect(e: Expr): { root: string; field: string; testOnly: boolean } | undefined {
  if (e.exprKind.case !== 'selectExpr') return undefined;
  const operand = e.exprKind.value.operand;
  if (operand?.exprKind.case !== 'identExpr') return undefined;
  return {
    root: operand.exprKind.value.name,
    field: e.exprKind.value.field,
    testOnly: e.exprKind.value.testOnly,
  };
}

/**
 * A selection of a declared input: `root.field`, or `root.scope.field` (as field "scope.field") for
 * the nested `signals.<scope>.<name>`. Whether the names are declared is for the caller to check.
 */
export function rootSelect(e: Expr): { root: string; field: string; testOnly: boolean } | undefined {
  const direct = identSelect(e);
  if (direct !== undefined) return direct;
  if (e.exprKind.case !== 'selectExpr') return undefined;
  const operand = e.exprKind.value.operand;
  const inner = operand === undefined ? undefined : identSelect(operand);
  if (inner === undefined || inner.testOnly || inner.root !== 'signals') return undefined;
  return {
    root: inner.root,
    field: `${inner.field}.${e.exprKind.value.field}`,
    testOnly: e.exprKind.value.testOnly,
  };
}
