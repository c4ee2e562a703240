// The words full-text search finds in an entry: every string value of the event (never keys,
// numbers or booleans), lowercased and split at every character that is not a letter or a digit,
// except that a UUID stays one word, hyphens and all. Split in five, each of the several fresh ids
// of a request's events gave the index five words it had never seen; a new word is what costs most
// to add to PostgreSQL's GIN index (measured on PGlite: 220 µs an entry with 20 new words of 49,
// 88 µs with 5 of 26), and a governed request's two entries held 40 such pieces.
// They are split here rather than by PostgreSQL's text-search parser because that parser was the
// largest cost of indexing an entry on the embedded database (~50 µs of its one thread per entry,
// against ~10 µs here, on a thread of its own). A query's text is split the same way.

// Combining marks belong to their word (scripts such as Devanagari write vowels with them).
const SEPARATORS = /[^\p{L}\p{M}\p{N}]+/u;
/** A UUID (lowercased) that is not part of a longer run of letters and digits. */
const UUID =
  /(?<![\p{L}\p{M}\p{N}])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![\p{L}\p{M}\p{N}])/gu;
const UUID_LENGTH = 36;
/** PostgreSQL refuses a tsvector word of 2 KB or more. */
const MAX_WORD_BYTES = 2047;
/** Nor a tsvector of 1 MB or more: words of a huge entry past this budget are not searchable. */
const MAX_ENTRY_WORD_BYTES = 512 * 1024;

const encoder = new TextEncoder();

function utf8Length(word: string): number {
  // A UTF-16 unit is at most 3 bytes in UTF-8: short words need no encoding to know they fit.
  return word.length * 3 <= MAX_WORD_BYTES ? word.length : encoder.encode(word).length;
}

function addWord(word: string, words: Set<string>, budget: { bytes: number }): void {
  if (word === '' || words.has(word)) return;
  const bytes = utf8Length(word);
  if (bytes > MAX_WORD_BYTES || bytes > budget.bytes) return;
  budget.bytes -= bytes + 1;
  words.add(word);
}

function addWords(text: string, words: Set<string>, budget: { bytes: number }): void {
  let rest = text.toLowerCase();
  if (rest.length >= UUID_LENGTH && rest.includes('-')) {
    rest = rest.replace(UUID, (id) => {
      addWord(id, words, budget);
      return ' ';
    });
  }
  for (const word of rest.split(SEPARATORS)) addWord(word, words, budget);
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

const quoted = (word: string): string => `'${word.replace(/['\\]/g, (c) => `\\${c}`)}'`;

/**
 * The PostgreSQL tsquery text matching entries holding every word of `text` (split as entries
 * are), or undefined when it has no words. A UUID also matches its five pieces, as entries indexed
 * before it stayed whole hold it.
 */
export function searchQuery(text: string): string | undefined {
  const words = queryWords(text);
  if (words.length === 0) return undefined;
  // Words hold only letters and digits, and a hyphen only when they are a UUID; quoting escapes the
  // rest of tsquery's syntax regardless.
  return words
    .map((w) => (w.includes('-') ? `(${quoted(w)} | ${w.split('-').map(quoted).join(' & ')})` : quoted(w)))
    .join(' & ');
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
