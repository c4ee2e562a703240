import { canonicalize } from '@flowloom/ledger';
import { describe, expect, it } from 'vitest';
import { prepareEntry } from './entry.js';
import { isSecretField, REDACTED, type ScrubbedJson, scrubbedCanonicalJson } from './scrub.js';

function written(value: unknown): { value: unknown; redactions: number } {
  const json = scrubbedCanonicalJson(value, { patterns: true }) as ScrubbedJson;
  return { value: JSON.parse(json.text), redactions: json.redactions };
}

describe('secret removal', () => {
  it('when a field is named like a credential, then it is secret; token counts are not', () => {
    for (const name of [
      'authorization',
      'Authorization',
      'x-api-key',
      'apiKey',
      'api_key',
      'clientSecret',
      'accessToken',
      'refresh_token',
      'password',
      'Cookie',
      'privateKey',
      'token',
    ]) {
      expect(isSecretField(name), name).toBe(true);
    }
    for (const name of [
      'inputTokens',
      'outputTokens',
      'cachedInputTokens',
      'timeToFirstTokenMs',
      'keyId',
      'tokenCount',
      'model',
      'owner',
    ]) {
      expect(isSecretField(name), name).toBe(false);
    }
  });

  it('when credentials appear inside text, then only they are replaced', () => {
    const { value, redactions } = written({
      message: 'used flk_abcdefghij0123456789 and sk-ant-api03-abcdefghijkl then Bearer abc.def.ghi-jkl',
      url: 'postgres://app:s3cr3t-pass@db:5432/x?sslmode=require',
      query: 'https://x.example/?api_key=zzz999&ok=1',
      fine: 'task-list risk-assessment keyId=k1',
    });
    expect(value).toEqual({
      message: `used ${REDACTED} and ${REDACTED} then Bearer ${REDACTED}`,
      url: `postgres://app:${REDACTED}@db:5432/x?sslmode=require`,
      query: `https://x.example/?api_key=${REDACTED}&ok=1`,
      fine: 'task-list risk-assessment keyId=k1',
    });
    expect(redactions).toBe(5);
  });

  it('when a value is not plain JSON, then it is normalised like JSON.stringify (so in-process equals Kafka)', () => {
    const when = new Date('2025-01-02T03:04:05.006Z');
    const { value } = written({
      when,
      nan: Number.NaN,
      gone: undefined,
      f: () => 1,
      big: 10n,
      list: [undefined, 1],
    });
    expect(value).toEqual({ when: when.toISOString(), nan: null, big: '10', list: [null, 1] });
    expect(value).toEqual(
      JSON.parse(JSON.stringify({ when, nan: Number.NaN, gone: undefined, list: [undefined, 1], big: '10' })),
    );
  });

  it('when events are prepared, then the entry is exactly the reference RFC 8785 canonicalisation', () => {
    const samples: unknown[] = [
      { b: 1, a: [true, null, 'x'], c: { z: 1.5e-7, y: 1e21, x: -0 } },
      { '10': 'ten', '9': 'nine', b: 'index-like keys sort as text' },
      { emoji: '😀', quote: '"\\', control: '\u0001\n', lineSep: '\u2028', é: 'accent key' },
      { nested: { deeper: { deepest: [1, 2, { k: 'v' }] } }, n: 123456789012345 },
    ];
    for (const data of samples) {
      const event = {
        specversion: '1.0',
        id: 'e1',
        source: 's',
        type: 'dev.flowloom.test.v1',
        time: '2025-01-01T00:00:00Z',
        data,
      };
      const prepared = prepareEntry(event, new Date());
      expect(prepared.entry).toBe(canonicalize(JSON.parse(JSON.stringify(event))));
    }
  });

  it('when a string is not well-formed Unicode, then the event still leaves a trace entry', () => {
    const prepared = prepareEntry(
      { id: 'bad', type: 'dev.flowloom.test.v1', source: 's', data: { t: 'a\ud800b' } },
      new Date(),
    );
    expect(JSON.parse(prepared.entry).data.$unloggable).toBeTruthy();
    expect(prepared.eventId).toBe('bad');
  });
});
