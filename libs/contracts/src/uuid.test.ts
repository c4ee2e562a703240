import { describe, expect, it } from 'vitest';
import { nameBasedUuid, UUID_PATTERN, uuidv7 } from './uuid.js';

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

describe('nameBasedUuid', () => {
  it('when the name is the same, then so is the id; another name gives another id; both are valid v8', () => {
    const a = nameBasedUuid('origin\nkey change\n7\nold\nnew');
    expect(nameBasedUuid('origin\nkey change\n7\nold\nnew')).toBe(a);
    expect(nameBasedUuid('origin\nkey change\n8\nold\nnew')).not.toBe(a);
    expect(a).toMatch(UUID_PATTERN);
    expect(a[14]).toBe('8');
    expect('89ab').toContain(a[19]);
  });

  it('when the name is known, then the id is the first 128 bits of its SHA-256 with version and variant set', () => {
    // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 ...
    expect(nameBasedUuid('abc')).toBe('ba7816bf-8f01-8fea-8141-40de5dae2223');
  });
});
