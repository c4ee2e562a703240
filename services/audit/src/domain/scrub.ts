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

/** True for `authorization`, `apiKey`, `x-api-key`, `clientSecret`, `accessToken`… but not `inputTokens`. */
export function isSecretField(name: string): boolean {
  const normalized = name.toLowerCase().replace(/[-_\s]/g, '');
  return SECRET_FIELDS.has(normalized) || SECRET_SUFFIXES.some((suffix) => normalized.endsWith(suffix));
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

type WellFormed = { isWellFormed(): boolean };

interface KeyInfo {
  /** `"key":` as JSON writes it. */
  readonly prefix: string;
  readonly secret: boolean;
  readonly wellFormed: boolean;
}

/** What writing a field name takes, remembered: field names repeat across events. */
const keyInfos = new Map<string, KeyInfo>();

function keyInfo(key: string): KeyInfo {
  let info = keyInfos.get(key);
  if (info === undefined) {
    info = {
      prefix: `${JSON.stringify(key)}:`,
      secret: isSecretField(key),
      wellFormed: (key as unknown as WellFormed).isWellFormed(),
    };
    // A bounded number of them: names an attacker makes up are not all kept.
    if (keyInfos.size < 10_000) keyInfos.set(key, info);
  }
  return info;
}

/** A string or key that is not well-formed Unicode: RFC 8785 cannot write it. */
class NotWellFormed extends Error {}

interface Walk {
  /** Look for credential shapes inside every string, not only secret-named fields. */
  readonly patterns: boolean;
  redactions: number;
  readonly ancestors: Set<object>;
}

export interface ScrubbedJson {
  /** RFC 8785 canonical JSON. */
  readonly text: string;
  /** How many values were replaced; recorded nowhere else, useful in tests and metrics. */
  readonly redactions: number;
}

/**
 * The canonical JSON (RFC 8785) of `value` with secrets replaced by "[redacted]", in one walk:
 * secret-named fields at any depth and, with `patterns`, credential shapes inside every string
 * (without it, screen the text with mayHoldSecretText and write again with it when that matches:
 * the screen is far cheaper than matching string by string). Like JSON.stringify it calls `toJSON`
 * (dates become ISO strings), drops `undefined` and functions, and turns non-finite numbers into
 * null; bigints become strings, and what nests deeper than 64 or refers to itself becomes
 * "[too deep]". Undefined when a string or key is not well-formed Unicode, which RFC 8785 cannot
 * write.
 */
export function scrubbedCanonicalJson(
  value: unknown,
  options: { patterns?: boolean } = {},
): ScrubbedJson | undefined {
  const walk: Walk = { patterns: options.patterns ?? false, redactions: 0, ancestors: new Set() };
  try {
    return { text: writeJson(value, walk, 0) ?? 'null', redactions: walk.redactions };
  } catch (error) {
    if (error instanceof NotWellFormed) return undefined;
    throw error;
  }
}

const REDACTED_JSON = JSON.stringify(REDACTED);

function writeString(value: string, walk: Walk): string {
  let text = value;
  if (walk.patterns) {
    const scrubbed = scrubText(value);
    walk.redactions += scrubbed.redactions;
    text = scrubbed.text;
  }
  if (!(text as unknown as WellFormed).isWellFormed()) throw new NotWellFormed();
  // JSON.stringify escapes strings exactly as RFC 8785 §3.2.2.2 does.
  return JSON.stringify(text);
}

/** A value as JSON.stringify writes it: `toJSON` called, non-finite numbers null, bigints text. */
export function jsonValue(value: unknown): unknown {
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value.toString();
    case 'object': {
      const toJSON = (value as { toJSON?: unknown } | null)?.toJSON;
      return typeof toJSON === 'function' ? jsonValue(toJSON.call(value)) : value;
    }
    default:
      return value;
  }
}

/** The JSON of `input`, or undefined where JSON.stringify leaves a value out. */
function writeJson(input: unknown, walk: Walk, depth: number): string | undefined {
  const value = jsonValue(input);
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return writeString(value, walk);
    case 'number':
      // Finite here; ECMAScript's number to string is RFC 8785's (§3.2.2.3).
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      return undefined;
  }
  const object = value as object;
  if (depth >= MAX_DEPTH || walk.ancestors.has(object)) {
    walk.redactions++;
    return '"[too deep]"';
  }
  walk.ancestors.add(object);
  try {
    return Array.isArray(object) ? writeArray(object, walk, depth) : writeObject(object, walk, depth);
  } finally {
    walk.ancestors.delete(object);
  }
}

function writeArray(array: readonly unknown[], walk: Walk, depth: number): string {
  let out = '[';
  for (let i = 0; i < array.length; i++) {
    if (i > 0) out += ',';
    out += writeJson(array[i], walk, depth + 1) ?? 'null';
  }
  return `${out}]`;
}

function writeObject(object: object, walk: Walk, depth: number): string {
  // Default sort compares UTF-16 code units: RFC 8785 §3.2.3's order, array-index keys included.
  const keys = Object.keys(object).sort();
  const record = object as Record<string, unknown>;
  let out = '{';
  let first = true;
  for (const key of keys) {
    const info = keyInfo(key);
    if (!info.wellFormed) throw new NotWellFormed();
    const item = record[key];
    let json: string | undefined;
    if (info.secret && item !== null && item !== undefined && item !== '') {
      walk.redactions++;
      json = REDACTED_JSON;
    } else json = writeJson(item, walk, depth + 1);
    if (json === undefined) continue;
    out += first ? info.prefix : `,${info.prefix}`;
    out += json;
    first = false;
  }
  return `${out}}`;
}
