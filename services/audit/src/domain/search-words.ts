// The words full-text search finds in an entry: every string value of the event (never keys,
// numbers or booleans), lowercased and split at every character that is not a letter or a digit.
// They are split here rather than by PostgreSQL's text-search parser because that parser was the
// largest cost of indexing an entry on the embedded database (~50 µs of its one thread per entry,
// against ~10 µs here, on a thread of its own). A query's text is split the same way.

// Combining marks belong to their word (scripts such as Devanagari write vowels with them).
const SEPARATORS = /[^\p{L}\p{M}\p{N}]+/u;
/** PostgreSQL refuses a tsvector word of 2 KB or more. */
const MAX_WORD_BYTES = 2047;
/** Nor a tsvector of 1 MB or more: words of a huge entry past this budget are not searchable. */
const MAX_ENTRY_WORD_BYTES = 512 * 1024;

const encoder = new TextEncoder();

function utf8Length(word: string): number {
  // A UTF-16 unit is at most 3 bytes in UTF-8: short words need no encoding to know they fit.
  return word.length * 3 <= MAX_WORD_BYTES ? word.length : encoder.encode(word).length;
}

function addWords(text: string, words: Set<string>, budget: { bytes: number }): void {
  for (const word of text.toLowerCase().split(SEPARATORS)) {
    if (word === '' || words.has(word)) continue;
    const bytes = utf8Length(word);
    if (bytes > MAX_WORD_BYTES || bytes > budget.bytes) continue;
    budget.bytes -= bytes + 1;
    words.add(word);
  }
}

/**
 * The distinct search words of an entry (its canonical JSON). Text that is not JSON (only possible
 * by tampering) is searched as a whole.
 */
export function searchWords(entry: string): string[] {
  let root: unknown;
  try {
    root = JSON.parse(entry);
  } catch {
    root = entry;
  }
  const words = new Set<string>();
  const budget = { bytes: MAX_ENTRY_WORD_BYTES };
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') addWords(value, words, budget);
    else if (Array.isArray(value)) for (let i = value.length - 1; i >= 0; i--) pending.push(value[i]);
    else if (value !== null && typeof value === 'object') {
      const values = Object.values(value);
      for (let i = values.length - 1; i >= 0; i--) pending.push(values[i]);
    }
  }
  return [...words];
}

/** The distinct words of a query's text, split as entries are. */
function queryWords(text: string): string[] {
  const words = new Set<string>();
  addWords(text, words, { bytes: MAX_ENTRY_WORD_BYTES });
  return [...words];
}

/**
 * The PostgreSQL tsquery text matching entries holding every word of `text` (split as entries
 * are), or undefined when it has no words.
 */
export function searchQuery(text: string): string | undefined {
  const words = queryWords(text);
  if (words.length === 0) return undefined;
  // Words hold only letters and digits; quoting escapes the rest of tsquery's syntax regardless.
  return words.map((w) => `'${w.replace(/['\\]/g, (c) => `\\${c}`)}'`).join(' & ');
}

/**
 * Whether an entry (its canonical JSON) holds every word of `text`: what a search of the index
 * finds, decided from the entry itself (an export reads entries, not the index). A text with no
 * words matches nothing, as its search finds nothing.
 */
export function textMatcher(text: string): (entry: string) => boolean {
  const wanted = queryWords(text);
  if (wanted.length === 0) return () => false;
  return (entry) => {
    const words = new Set(searchWords(entry));
    return wanted.every((w) => words.has(w));
  };
}
