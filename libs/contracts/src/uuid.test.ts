import { describe, expect, it } from 'vitest';
import { UUID_PATTERN, uuidv7 } from './uuid.js';

describe('uuidv7', () => {
  it('when many ids are made in the same millisecond, then they are unique, valid v7 and increasing', () => {
    const ids = Array.from({ length: 5000 }, () => uuidv7(1_700_000_000_000));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(id).toMatch(UUID_PATTERN);
      expect(id[14]).toBe('7');
      expect('89ab').toContain(id[19]);
    }
    expect([...ids].sort()).toEqual(ids);
  });

  it('when the time is known, then it is encoded in the first 48 bits', () => {
    const id = uuidv7(Date.UTC(2030, 0, 1));
    const ms = Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(Date.UTC(2030, 0, 1));
  });
});
