// Defensive secret removal before an event becomes a permanent ledger entry. Producers must not put
// secrets in events at all; this is the backstop, because an entry can never be edited afterwards
// (only pruned). It also normalises the value the way JSON serialisation would, so an event handed
// over in-process and the same event read back from Kafka become the same entry.

export const REDACTED = '[redacted]';

/** Field names (lowercase, without `-`, `_` and spaces) whose value is always a secret. */
const SECRET_FIELDS = new Set([
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'token',
  'password',
  'passwd',
  'passphrase',
  'secret',
  'credential',
  'credentials',
]);
const SECRET_SUFFIXES = ['apikey', 'secret', 'password', 'privatekey', 'signingkey', 'secretkey', 'token'];

const fieldVerdicts = new Map<string, boolean>();

/** True for `authorization`, `apiKey`, `x-api-key`, `clientSecret`, `accessToken`… but not `inputTokens`. */
export function isSecretField(name: string): boolean {
  let verdict = fieldVerdicts.get(name);
  if (verdict === undefined) {
    const normalized = name.toLowerCase().replace(/[-_\s]/g, '');
    verdict = SECRET_FIELDS.has(normalized) || SECRET_SUFFIXES.some((suffix) => normalized.endsWith(suffix));
    // Field names repeat across events; remember a bounded number of them.
    if (fieldVerdicts.size < 10_000) fieldVerdicts.set(name, verdict);
  }
  return verdict;
}

// Credential shapes inside free text (the families of @flowloom/telemetry's scrubSecrets, plus
// key=value pairs), matched per string value.
const SECRET_PATTERNS: ReadonlyArray<{ pattern: RegExp; keep: boolean }> = [
  { pattern: /\bflk_[A-Za-z0-9_-]{8,}/g, keep: false },
  { pattern: /\bsk-(?:ant-)?[A-Za-z0-9_-]{8,}/g, keep: false },
  { pattern: /\bAIza[0-9A-Za-z_-]{20,}/g, keep: false },
  { pattern: /\b(Bearer\s+)[A-Za-z0-9._~+/-]{8,}=*/gi, keep: true },
  { pattern: /\b(Basic\s+)[A-Za-z0-9+/]{8,}=*/g, keep: true },
  { pattern: /(postgres(?:ql)?:\/\/[^:/\s@]+:)[^@\s]+(?=@)/gi, keep: true },
  { pattern: /((?:api[-_]?key|token|secret|password)=)[^&\s"']+/gi, keep: true },
];
/** Cheap screen: only text containing one of these can match a pattern above. */
const SUSPICIOUS = /flk_|sk-|AIza|bearer|basic|postgres|key=|token=|secret=|password=/i;

/** Whether serialised text may hold a credential pattern (then scrub its strings one by one). */
export function mayHoldSecretText(text: string): boolean {
  return SUSPICIOUS.test(text);
}

export interface ScrubResult {
  readonly value: unknown;
  /** How many values were replaced; recorded nowhere else, useful in tests and metrics. */
  readonly redactions: number;
  /**
   * True when `JSON.stringify(value)` is already the RFC 8785 canonical form: keys were inserted in
   * UTF-16 order, no key is an array index (JavaScript would move it first) and every string is
   * well-formed Unicode. Otherwise the reference canonicaliser must be used (and may refuse).
   */
  readonly canonical: boolean;
}

const MAX_DEPTH = 64;

export function scrubText(text: string): { text: string; redactions: number } {
  if (text.length < 8 || !SUSPICIOUS.test(text)) return { text, redactions: 0 };
  let redactions = 0;
  let out = text;
  for (const { pattern, keep } of SECRET_PATTERNS) {
    out = out.replace(pattern, (_match: string, prefix: unknown) => {
      redactions++;
      return keep && typeof prefix === 'string' ? `${prefix}${REDACTED}` : REDACTED;
    });
  }
  return { text: out, redactions };
}

interface State {
  redactions: number;
  canonical: boolean;
  /** Look for credential patterns inside strings (skipped when the caller screened the text). */
  patterns: boolean;
}

type WellFormed = { isWellFormed(): boolean };
const ARRAY_INDEX = /^(?:0|[1-9][0-9]{0,9})$/;

/**
 * A JSON-shaped deep copy of `value` with secrets replaced by "[redacted]": secret-named fields at
 * any depth, credential patterns in every string. Like JSON.stringify it drops `undefined` and
 * functions, calls `toJSON` (dates become ISO strings) and turns non-finite numbers into null.
 * Object keys are inserted sorted, so the copy usually serialises straight to canonical JSON.
 * With `patterns: false` only secret-named fields are replaced: for a caller that screened the
 * serialised result with mayHoldSecretText and scrubs again when it matches.
 */
export function scrubSecrets(value: unknown, options: { patterns?: boolean } = {}): ScrubResult {
  const state: State = { redactions: 0, canonical: true, patterns: options.patterns ?? true };
  const result = scrub(value, state, 0, new Set());
  return {
    value: result === undefined ? null : result,
    redactions: state.redactions,
    canonical: state.canonical,
  };
}

function scrubString(value: string, state: State): string {
  if (!state.patterns) {
    if (state.canonical && !(value as unknown as WellFormed).isWellFormed()) state.canonical = false;
    return value;
  }
  const { text, redactions } = scrubText(value);
  state.redactions += redactions;
  if (state.canonical && !(text as unknown as WellFormed).isWellFormed()) state.canonical = false;
  return text;
}

function scrub(value: unknown, state: State, depth: number, seen: Set<object>): unknown {
  if (value === null) return null;
  switch (typeof value) {
    case 'string':
      return scrubString(value, state);
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'object':
      break;
    default:
      return undefined;
  }
  const object = value as object;
  const withToJson = object as { toJSON?: unknown };
  if (typeof withToJson.toJSON === 'function') {
    return scrub((withToJson.toJSON as () => unknown).call(object), state, depth, seen);
  }
  if (depth >= MAX_DEPTH || seen.has(object)) {
    state.redactions++;
    return '[too deep]';
  }
  seen.add(object);
  try {
    if (Array.isArray(object)) {
      return object.map((item) => {
        const out = scrub(item, state, depth + 1, seen);
        return out === undefined ? null : out;
      });
    }
    const keys = Object.keys(object).sort();
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const item = (object as Record<string, unknown>)[key];
      if (state.canonical && (ARRAY_INDEX.test(key) || !(key as unknown as WellFormed).isWellFormed())) {
        state.canonical = false;
      }
      if (isSecretField(key) && item !== null && item !== undefined && item !== '') {
        state.redactions++;
        out[key] = REDACTED;
        continue;
      }
      const scrubbed = scrub(item, state, depth + 1, seen);
      if (scrubbed !== undefined) out[key] = scrubbed;
    }
    return out;
  } finally {
    seen.delete(object);
  }
}
