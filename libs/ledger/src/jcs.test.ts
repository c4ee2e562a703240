import { describe, expect, it } from 'vitest';
import { canonicalBytes, canonicalize } from './jcs.js';

function fromBits(hex: string): number {
  return Buffer.from(hex, 'hex').readDoubleBE(0);
}

describe('RFC 8785 canonical JSON', () => {
  it('when numbers are serialised, then they match the RFC 8785 Appendix B samples', () => {
    const samples: Array<[string, string]> = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, expected] of samples) expect(canonicalize(fromBits(bits))).toBe(expected);
  });

  it('when a number is NaN or infinite (Appendix B 7fff…, 7ff0…), then it is rejected by path', () => {
    expect(() => canonicalize(fromBits('7fffffffffffffff'))).toThrow(/NaN is not a JSON number/);
    expect(() => canonicalize({ a: [fromBits('7ff0000000000000')] })).toThrow(/Infinity .* at \$\.a\[0\]/);
    expect(() => canonicalize(-Infinity)).toThrow(/not_canonicalizable|-Infinity/);
  });

  it('when object keys need sorting, then they follow UTF-16 code units (RFC 8785 §3.2.3 example)', () => {
    const input = JSON.parse(
      '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One",' +
        '"\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}',
    ) as unknown;
    // The RFC lists the values in this order; control characters are escaped, others kept.
    expect(canonicalize(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('when the RFC 8785 §3.2.2 example is canonicalised, then the output is byte-exact', () => {
    // The reference implementation's testdata/input/values.json and output/values.json.
    const input = JSON.parse(
      '{"numbers": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],' +
        '"escaping": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",' +
        '"literals": [null, true, false]}',
    ) as unknown;
    expect(canonicalize(input)).toBe(
      '{"escaping":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/","literals":[null,true,false],' +
        '"numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27]}',
    );
  });

  it('when keys are "weird" (reference testdata weird.json), then output matches the reference', () => {
    const input = JSON.parse(
      '{"\\u20ac":"Euro Sign","1":"One","\\u0080":"Control\\u007f","\\ud83d\\ude02":"Smiley",' +
        '"\\u00f6":"Latin Small Letter O With Diaeresis","\\ufb33":"Hebrew Letter Dalet With Dagesh",' +
        '"</script>":"Browser Challenge"}',
    ) as unknown;
    expect(canonicalize(input)).toBe(
      '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f","ö":"Latin Small Letter O With Diaeresis",' +
        '"€":"Euro Sign","😂":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('when control characters appear in strings, then only they are escaped, in lowercase hex', () => {
    expect(canonicalize('\u0000\u0008\t\n\u000b\f\r\u001f "\\/\u007f\u2028')).toBe(
      '"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f \\"\\\\/\u007f\u2028"',
    );
  });

  it('when a value is not JSON, then canonicalize names it and where it is', () => {
    expect(() => canonicalize({ data: { cost: undefined } })).toThrow(
      /undefined is not JSON.* at \$\.data\.cost/,
    );
    expect(() => canonicalize([1, undefined])).toThrow(/at \$\[1\]/);
    expect(() => canonicalize({ n: 10n })).toThrow(/bigint/);
    expect(() => canonicalize(new Map())).toThrow(/Map is not a plain JSON object/);
    expect(() => canonicalize({ s: 'a\uD800b' })).toThrow(/lone surrogate/);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => canonicalize(cyclic)).toThrow(/circular/);
  });

  it('when values are nested with dates and empty containers, then output is canonical UTF-8', () => {
    const value = { z: [], a: {}, d: new Date(0), m: { b: 1, a: [true, null, -0] }, e: 'é' };
    expect(canonicalize(value)).toBe(
      '{"a":{},"d":"1970-01-01T00:00:00.000Z","e":"é","m":{"a":[true,null,0],"b":1},"z":[]}',
    );
    expect(Buffer.from(canonicalBytes({ e: 'é' })).toString('hex')).toBe('7b2265223a22c3a9227d');
  });
});
