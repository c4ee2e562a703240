import type { PathSegment } from './issues.js';

/** One problem in a policy source, ready to print as `file:line:col: path: message`. */
export interface PolicyDiagnostic {
  readonly file?: string;
  /** 1-based; absent when the source has no positions (an object, or a position-less JSON error). */
  readonly line?: number;
  readonly column?: number;
  /** Like `rules[2].action`; empty for the document as a whole. */
  readonly path: string;
  readonly message: string;
}

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

export function formatDiagnostic(d: PolicyDiagnostic): string {
  const where = `${d.file ?? '<policy>'}${d.line === undefined ? '' : `:${d.line}:${d.column ?? 1}`}`;
  return `${where}: ${d.path === '' ? '' : `${d.path}: `}${d.message}`;
}

export function formatDiagnostics(diagnostics: readonly PolicyDiagnostic[]): string {
  return diagnostics.map(formatDiagnostic).join('\n');
}
