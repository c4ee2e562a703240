import { describe, expect, it } from 'vitest';
import type { KeyAncestor, KeyIdentity } from './model.js';
import { type Authorship, assertCanAuthor, independenceConflict } from './rollout.js';

const root: KeyAncestor = { keyId: 'root', owner: 'admin', root: true };
const ancestor = (keyId: string, owner = keyId): KeyAncestor => ({ keyId, owner, root: false });
const key = (keyId: string, owner: string, lineage: KeyAncestor[]): KeyIdentity => ({
  keyId,
  owner,
  root: false,
  lineage,
});
/** alice's personal key, created with the bootstrap key. */
const alice: Authorship = { owner: 'alice', keyId: 'alice', lineage: [root] };

describe('independenceConflict: may this key approve what that key wrote', () => {
  it('when the approver is another person with a key from the bootstrap key, then there is no conflict', () => {
    expect(independenceConflict(alice, key('bob', 'bob', [root]))).toBeUndefined();
  });

  it('when the approver is the same person (any case) or the same key, then it is refused', () => {
    expect(independenceConflict(alice, key('alice2', ' Alice ', [root]))).toContain(
      'cannot approve its promotion',
    );
    expect(independenceConflict(alice, key('alice', 'someone', [root]))).toContain(
      'cannot approve its promotion',
    );
  });

  it("when the approver's key was created by the author's key, directly or through others, then it is refused", () => {
    expect(independenceConflict(alice, key('m', 'mallory', [ancestor('alice'), root]))).toContain(
      "descends from the author's key alice",
    );
    expect(
      independenceConflict(alice, key('m', 'mallory', [ancestor('x'), ancestor('alice'), root])),
    ).toContain("descends from the author's key alice");
  });

  it("when the approver's key created the author's key, then it is refused", () => {
    const sock: Authorship = { owner: 'puppet', keyId: 'p', lineage: [ancestor('bob'), root] };
    expect(independenceConflict(sock, key('bob', 'bob', [root]))).toContain(
      "created or rotated the author's",
    );
  });

  it('when both keys descend from one key other than the root, then it is refused', () => {
    const a: Authorship = { owner: 'a', keyId: 'a', lineage: [ancestor('carol'), root] };
    expect(independenceConflict(a, key('b', 'b', [ancestor('carol'), root]))).toContain(
      'both descend from key carol',
    );
  });

  it('when the approver holds the bootstrap key, then it is refused', () => {
    expect(independenceConflict(alice, { keyId: 'root', owner: 'ops', root: true, lineage: [] })).toContain(
      'bootstrap admin key',
    );
  });

  it('when the version was written by the system (no key), then only the person is compared', () => {
    const system: Authorship = { owner: 'system', keyId: null, lineage: null };
    expect(independenceConflict(system, key('bob', 'bob', [root]))).toBeUndefined();
  });
});

describe('assertCanAuthor', () => {
  it('when the bootstrap key pushes, then it is refused, saying to create personal admin keys', () => {
    expect(() =>
      assertCanAuthor({
        id: 'admin',
        label: 'k',
        key: { keyId: 'root', owner: 'admin', root: true, lineage: [] },
      }),
    ).toThrow(/Create a personal admin key/);
    expect(() =>
      assertCanAuthor({ id: 'alice', label: 'k', key: key('alice', 'alice', [root]) }),
    ).not.toThrow();
  });
});
