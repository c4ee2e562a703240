import type { HashList } from './hash-list.js';

export type TamperKind = 'changed' | 'deleted' | 'inserted' | 'reordered' | 'truncated';

export interface EntryDifference {
  /** Index of the first line of entries.jsonl that is not the logged entry at that position. */
  readonly index: number;
  readonly kind: TamperKind;
  /** Entries deleted, inserted or missing at the end. */
  readonly count?: number;
  readonly message: string;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? 'y' : 'ies'}`;

/**
 * Compares the leaf hashes of the bundle's lines (`actual`) with the authenticated leaf hashes
 * the log committed (`expected`) and names the first difference. Rules (BUNDLE-FORMAT.md §5):
 * at the first index i where they differ, with E = expected and A = actual,
 *   - E[i] appears later in A and A[i] does not appear later in E → inserted (lines before E[i])
 *   - A[i] appears later in E and E[i] does not appear later in A → deleted (entries before A[i])
 *   - both appear later                                           → reordered
 *   - neither                                                     → changed
 * and when one list is a prefix of the other: fewer lines → truncated, more → inserted.
 */
export function firstDifference(expected: HashList, actual: HashList): EntryDifference | undefined {
  const n = expected.length;
  const m = actual.length;
  const common = Math.min(n, m);
  const i = expected.commonPrefix(actual);
  if (i === common) {
    if (m < n) {
      return {
        index: m,
        kind: 'truncated',
        count: n - m,
        message: `the bundle ends after ${m} entries but the checkpoint covers ${n}: entries ${m}..${n - 1} are missing`,
      };
    }
    if (m > n) {
      return {
        index: n,
        kind: 'inserted',
        count: m - n,
        message: `${m - n} line(s) after entry ${n - 1} are not covered by the signed checkpoint of size ${n}`,
      };
    }
    return undefined;
  }

  const laterInExpected = expected.indexOf(actual.at(i), i + 1);
  const laterInActual = actual.indexOf(expected.at(i), i + 1);
  if (laterInActual !== undefined && laterInExpected === undefined) {
    const count = laterInActual - i;
    return {
      index: i,
      kind: 'inserted',
      count,
      message: `${count} line(s) not in the log were inserted at entry ${i}; logged entry ${i} follows at line ${laterInActual}`,
    };
  }
  if (laterInExpected !== undefined && laterInActual === undefined) {
    const count = laterInExpected - i;
    return {
      index: i,
      kind: 'deleted',
      count,
      message: `${plural(count, 'entr')} deleted at entry ${i}: line ${i} holds logged entry ${laterInExpected}`,
    };
  }
  if (laterInExpected !== undefined && laterInActual !== undefined) {
    return {
      index: i,
      kind: 'reordered',
      message: `entries reordered at entry ${i}: line ${i} holds logged entry ${laterInExpected}, and logged entry ${i} is at line ${laterInActual}`,
    };
  }
  return {
    index: i,
    kind: 'changed',
    message: `entry ${i} was changed: its leaf hash is not the one the log committed at that position`,
  };
}
