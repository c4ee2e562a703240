import { canonicalize } from '@flowloom/ledger';
import { createPrng } from '@flowloom/ledger/testing/prng';
import { describe, expect, it } from 'vitest';
import { prepareEntry } from './entry.js';
import { isSecretField, REDACTED, scrubbedCanonicalJson, scrubText } from './scrub.js';

const FRAGMENTS = [
  'a',
  '\ud800',
  'Zz',
  'é',
  '😀',
  '"',
  '\\',
  '\n',
  '\u0001',
  '\u2028',
  ' ',
  'x y',
  '42',
  'gpt-4o',
  'ok',
];
/** Credential shapes, rarely: the one-walk path must then give way to the string-by-string scrub. */
const CREDENTIALS = ['flk_abcdefgh12345678', 'Bearer abcdefghijkl', 'api_key=zzz999'];
const NUMBERS = [0, -0, 1, -7, 1.5e-7, 1e21, 123456789012345, 0.1, Number.NaN, Number.POSITIVE_INFINITY];
const KEYS = [
  ...['a', 'b', 'Z', 'é', '10', '9', '0', '01', '', 'x-y', 'inputTokens', 'keyId', 'owner', 'project', 'job'],
  ...['verdict', 'outcome', 'decision', 'action', 'status', 'errorCode', 'actor', 'requestedBy'],
  ...['apiKey', 'password', 'token', 'authorization', 'x-api-key', 'clientSecret'],
];

function pickOne<T>(next: () => number, list: readonly T[]): T {
  return list[Math.floor(next() * list.length)] as T;
}

function text(next: () => number): string {
  if (next() < 0.02) return pickOne(next, CREDENTIALS);
  let out = '';
  for (let n = Math.floor(next() * 4); n > 0; n--) out += pickOne(next, FRAGMENTS);
  return out;
}

function value(next: () => number, depth: number): unknown {
  const roll = next();
  if (depth >= 4 || roll < 0.45) {
    const kind = Math.floor(next() * 9);
    if (kind === 0) return null;
    if (kind === 1) return undefined;
    if (kind === 2) return next() < 0.5;
    if (kind === 3) return pickOne(next, NUMBERS);
    if (kind === 4) return BigInt(Math.floor(next() * 1000));
    if (kind === 5) return new Date(Date.UTC(2026, 0, 1) + Math.floor(next() * 1e9));
    if (kind === 6) return () => 1;
    return text(next);
  }
  if (roll < 0.7) return Array.from({ length: Math.floor(next() * 4) }, () => value(next, depth + 1));
  const object: Record<string, unknown> = {};
  for (let n = Math.floor(next() * 6); n > 0; n--) object[pickOne(next, KEYS)] = value(next, depth + 1);
  return object;
}

function event(next: () => number): Record<string, unknown> {
  const field = (): unknown => (next() < 0.8 ? text(next) : value(next, 3));
  return {
    specversion: '1.0',
    id: next() < 0.9 ? `e-${Math.floor(next() * 1e6)}` : value(next, 3),
    type: next() < 0.9 ? 'dev.flowloom.request.completed.v1' : field(),
    source: field(),
    subject: field(),
    time: next() < 0.8 ? new Date(Date.UTC(2026, 0, 1)).toISOString() : value(next, 3),
    data: value(next, 0),
  };
}

/**
 * The entry an event must become, by the plainest means: JSON.stringify with a replacer that removes
 * secrets, then the reference canonicaliser. Undefined when that refuses (not well-formed Unicode).
 */
function expectedEntry(event: unknown): { entry: string; redactions: number } | undefined {
  let redactions = 0;
  const json = JSON.stringify(event, function (this: unknown, key: string, value: unknown) {
    const raw = Array.isArray(this) ? undefined : (this as Record<string, unknown>)[key];
    if (isSecretField(key) && raw !== null && raw !== undefined && raw !== '') {
      redactions++;
      return REDACTED;
    }
    if (typeof value === 'bigint') return value.toString();
    if (typeof value !== 'string') return value;
    const scrubbed = scrubText(value);
    redactions += scrubbed.redactions;
    return scrubbed.text;
  });
  try {
    return { entry: canonicalize(JSON.parse(json)), redactions };
  } catch {
    return undefined;
  }
}

describe('prepareEntry', () => {
  it('when events of every shape are prepared, then the entry is the reference canonicalisation with secrets removed, and the columns are what the entry holds', () => {
    const receivedAt = new Date('2026-12-07T00:00:00Z');
    let unloggable = 0;
    let scrubbedText = 0;
    for (let seed = 1; seed <= 3_000; seed++) {
      const e = event(createPrng(seed).next);
      const prepared = prepareEntry(e, receivedAt);
      const expected = expectedEntry(e);
      if (expected === undefined) {
        expect(JSON.parse(prepared.entry).data.$unloggable, `seed ${seed}`).toMatch(/well-formed/);
        unloggable++;
        continue;
      }
      expect(prepared.entry, `seed ${seed}`).toBe(expected.entry);
      expect(prepared.redactions, `seed ${seed}`).toBe(expected.redactions);
      if (prepared.entry.includes('[redacted]')) scrubbedText++;
      // The same event read back from Kafka (the entry's JSON) becomes the same entry, found by the
      // same columns.
      const again = prepareEntry(JSON.parse(prepared.entry), receivedAt);
      expect({ ...again, redactions: 0 }, `seed ${seed}`).toEqual({ ...prepared, redactions: 0 });
    }
    // The generator reaches every path.
    expect(unloggable).toBeGreaterThan(10);
    expect(scrubbedText).toBeGreaterThan(100);
  });

  it('when a field is named like a credential, then its value is replaced unless empty, and index-like keys sort as text', () => {
    expect(
      scrubbedCanonicalJson({ b: 1, apiKey: 'k-123', password: '', token: null, '10': 'x', '9': 'y' }),
    ).toEqual({
      text: '{"10":"x","9":"y","apiKey":"[redacted]","b":1,"password":"","token":null}',
      redactions: 1,
    });
  });

  it('when values nest too deep or refer to themselves, then they are cut and counted', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = [cyclic];
    expect(scrubbedCanonicalJson(cyclic)).toEqual({ text: '{"a":1,"self":["[too deep]"]}', redactions: 1 });
    let deep: unknown = 'bottom';
    for (let i = 0; i < 70; i++) deep = { d: deep };
    const text = scrubbedCanonicalJson(deep)?.text ?? '';
    expect(text.split('{').length - 1).toBe(64);
    expect(text).toContain('"d":"[too deep]"');
  });

  it('when a string or a key is not well-formed Unicode, then there is no canonical JSON of it', () => {
    expect(scrubbedCanonicalJson({ t: 'a\ud800b' })).toBeUndefined();
    expect(scrubbedCanonicalJson({ ['k\udc00']: 1 })).toBeUndefined();
    expect(scrubbedCanonicalJson({ t: 'a\ud83d\ude00b' })?.text).toBe('{"t":"a😀b"}');
  });
});
