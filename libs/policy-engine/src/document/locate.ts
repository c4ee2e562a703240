import { type Document, isMap, isScalar, isSeq, type LineCounter, type Node, type Scalar } from 'yaml';
import type { DocumentIssue } from './issues.js';

export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Finds where an issue sits in the YAML (or JSON) source, using the parser's node ranges. */
export function locateIssue(
  doc: Document.Parsed,
  lines: LineCounter,
  source: string,
  found: DocumentIssue,
): Position | undefined {
  let node: unknown = doc.contents;
  const { path } = found;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (pair === undefined) break; // a missing field: point at the mapping that lacks it
      if (last && found.target === 'key') return positionOf(lines, pair.key as Node);
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number' && node.items[segment] !== undefined) {
      node = node.items[segment];
    } else {
      break;
    }
  }
  if (!isNode(node)) return undefined;
  if (found.exprOffset !== undefined && isScalar(node)) {
    const offset = offsetInScalar(source, node, found.exprOffset);
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  }
  return positionOf(lines, node);
}

function isNode(v: unknown): v is Node {
  return isMap(v) || isSeq(v) || isScalar(v);
}

function positionOf(lines: LineCounter, node: Node): Position | undefined {
  if (node.range === undefined || node.range === null) return undefined;
  const { line, col } = lines.linePos(node.range[0]);
  return { line, column: col };
}

/**
 * Maps an offset inside a scalar's value to an offset in the source: exact for plain and quoted
 * one-line scalars and for literal blocks (`|`), the scalar's start for folded text it cannot follow.
 */
function offsetInScalar(source: string, node: Scalar, valueOffset: number): number {
  const range = node.range;
  if (range === undefined || range === null) return 0;
  const [start, end] = range;
  const raw = source.slice(start, end);
  const value = String(node.value);
  if (node.type === 'PLAIN' && raw === value) return start + valueOffset;
  const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
  if (quoted && raw.slice(1, -1) === value) return start + 1 + valueOffset;
  const valueLines = value.split('\n');
  const before = value.slice(0, valueOffset);
  const lineIndex = before.split('\n').length - 1;
  const column = valueOffset - (before.lastIndexOf('\n') + 1);
  // Block scalars begin with their header (`|`, `|-`, …) on the first line.
  let cursor = node.type === 'BLOCK_LITERAL' ? raw.indexOf('\n') + 1 : quoted ? 1 : 0;
  for (let i = 0; i <= lineIndex; i++) {
    const text = valueLines[i] ?? '';
    const at = raw.indexOf(text, cursor);
    if (at < 0 || (i > 0 && text === '')) return start + (quoted ? 1 : 0);
    if (i === lineIndex) return start + at + column;
    cursor = at + text.length;
  }
  return start;
}
