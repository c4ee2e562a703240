import { describe, expect, it } from 'vitest';
import type { EvaluationInput } from '../input.js';
import { ENVIRONMENT } from './environment.js';
import { fieldSource, headerKeySource, inputsRecordBuilder, SlotTable, type SlotValue } from './slots.js';

const HEADERS = ENVIRONMENT.request.get('headers')!;
const hostileNames = [
  'x"}; throw new Error("pwned"); ({"',
  '__proto__',
  'a\\b$' + '{1}`c', // a template-literal opener, split so the linter does not take it for a mistake
  'line\nbreak',
  'x-api-key',
];

describe('decision inputs records', () => {
  const table = new SlotTable();
  table.indexOf(fieldSource(ENVIRONMENT.signals.get('error_rate')!));
  for (const name of hostileNames) table.indexOf(headerKeySource(HEADERS, name));
  const input: EvaluationInput = {
    request: { headers: Object.fromEntries(hostileNames.map((n) => [n, `value of ${n}`])) },
    signals: { error_rate: 0.25 },
  };
  const values: SlotValue[] = [];
  table.fill(input, values);

  it('when header names contain quotes, backslashes, template syntax or __proto__, then they are plain keys', () => {
    const record = inputsRecordBuilder(table.sources)(values);
    expect(Object.keys(record)).toEqual([
      'signals.error_rate',
      ...hostileNames.map((n) => `request.headers[${JSON.stringify(n)}]`),
    ]);
    expect(record['request.headers["__proto__"]']).toBe('value of __proto__');
    expect(record['request.headers["x-api-key"]']).toBe('[redacted]');
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype);
  });

  it('when code generation is unavailable, then the fallback builds the same record', () => {
    expect(inputsRecordBuilder(table.sources, false)(values)).toEqual(
      inputsRecordBuilder(table.sources)(values),
    );
  });
});
