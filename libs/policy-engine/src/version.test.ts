import { describe, expect, it } from 'vitest';
import { loadPolicy } from './document/load.js';
import type { PolicyDocument } from './document/schema.js';
import { canonicalJson, policyVersionId } from './version.js';

function documentOf(source: string, filename = 'p.yaml'): PolicyDocument {
  const result = loadPolicy(source, { filename });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.document;
}

const yamlSource = `# comments do not change the version
name: guard
rules:
  - id: loops
    condition: signals.repeated_prompts > 5
    action: stop_job
  - id: slow
    priority: 2
    condition: signals.error_rate > 0.5
    action: { type: throttle, delayMs: 200 }
`;

describe('policy versions', () => {
  it('when keys are reordered, or the same policy is written as JSON, then the version id is the same', () => {
    const reordered = `rules:
  - action: stop_job
    condition: signals.repeated_prompts > 5
    id: loops
  - action: { delayMs: 200, type: throttle }
    condition: signals.error_rate > 0.5
    priority: 2
    id: slow
name: guard
`;
    const json = JSON.stringify({
      rules: [
        { condition: 'signals.repeated_prompts > 5', id: 'loops', action: { type: 'stop_job' } },
        {
          priority: 2,
          action: { type: 'throttle', delayMs: 200 },
          condition: 'signals.error_rate > 0.5',
          id: 'slow',
        },
      ],
      name: 'guard',
    });
    const v = policyVersionId(documentOf(yamlSource));
    expect(v).toMatch(/^[0-9a-f]{64}$/);
    expect(policyVersionId(documentOf(reordered))).toBe(v);
    expect(policyVersionId(documentOf(json, 'p.json'))).toBe(v);
  });

  it('when defaults are spelled out, then the version id is unchanged; when a value changes, it differs', () => {
    const v = policyVersionId(documentOf(yamlSource));
    const explicit = yamlSource.replace(
      '    action: stop_job',
      '    priority: 0\n    onError: closed\n    action: stop_job',
    );
    expect(policyVersionId(documentOf(explicit))).toBe(v);
    expect(policyVersionId(documentOf(yamlSource.replace('delayMs: 200', 'delayMs: 201')))).not.toBe(v);
  });

  it('when canonicalized, then keys are sorted and numbers and strings use ECMAScript forms (RFC 8785)', () => {
    expect(canonicalJson({ b: [1, 'x', true, null], a: { d: 1e21, c: 0.1 }, u: undefined })).toBe(
      '{"a":{"c":0.1,"d":1e+21},"b":[1,"x",true,null]}',
    );
    expect(canonicalJson({ '\u00e9': 1, z: 2, A: 3 })).toBe('{"A":3,"z":2,"\u00e9":1}');
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(TypeError);
  });
});
