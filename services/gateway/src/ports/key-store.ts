import type { KeyAncestor, KeyRecord, KeyRole, KeySuspension } from '../domain/keys.js';

export interface NewKey {
  id: string;
  secretHash: string;
  hint: string;
  name: string;
  owner: string;
  project: string | null;
  team: string | null;
  job: string | null;
  /** The full id of the job policy version bound to the key. */
  policy?: string | null;
  role: KeyRole;
  models: string[] | null;
  expiresAt: Date | null;
  rotatedFrom: string | null;
  createdBy: string | null;
  rotatedBy: string | null;
}

export interface KeyStore {
  insert(key: NewKey): Promise<KeyRecord>;
  findByHash(secretHash: string): Promise<KeyRecord | undefined>;
  findById(id: string): Promise<KeyRecord | undefined>;
  list(filter?: { project?: string; includeRevoked?: boolean }): Promise<KeyRecord[]>;
  /** Sets revoked_at if not already revoked; returns the record, or undefined when the id is unknown. */
  revoke(id: string, at: Date): Promise<KeyRecord | undefined>;
  /**
   * Suspends a key that is not revoked, keeping the first suspension if it already is; returns the
   * record (unchanged when revoked), or undefined when the id is unknown.
   */
  suspend(id: string, at: Date, suspension: KeySuspension): Promise<KeyRecord | undefined>;
  /** Lifts a suspension; returns the record, or undefined when the id is unknown. */
  resume(id: string): Promise<KeyRecord | undefined>;
  /** Shortens (never extends) an expiry, for a rotation's grace period. */
  expire(id: string, at: Date): Promise<KeyRecord | undefined>;
  countAdmins(): Promise<number>;
  /**
   * Every key whose holder could have known this key's secret, following creators, rotations and
   * rotators back to the roots; nearest first, without the key itself.
   */
  lineage(id: string): Promise<KeyAncestor[]>;
  /**
   * Inserts a bootstrap admin key unless its hash is already stored, or (`onlyWhenNoAdmin`) unless an
   * active admin exists; returns the record it inserted, or undefined. Atomic across processes sharing
   * the store, so replicas starting together register one key and never fail on each other's insert.
   */
  insertBootstrap(key: NewKey, options: { onlyWhenNoAdmin: boolean }): Promise<KeyRecord | undefined>;
}
