import {
  type CloudEvent,
  createEvent,
  GATEWAY_KEY_CHANGED,
  type KeyChanged,
  uuidv7,
} from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import { generateKeySecret, hashKey, type KeyRecord, type KeyRole, keyHint } from '../domain/keys.js';
import type { KeyStore, NewKey } from '../ports/key-store.js';
import type { Outbox } from '../ports/outbox.js';

export interface CreateKeyInput {
  name: string;
  owner: string;
  project?: string | null;
  team?: string | null;
  job?: string | null;
  role?: KeyRole;
  models?: string[] | null;
  expiresAt?: Date | null;
}

export interface IssuedKey {
  /** The secret, returned exactly once. */
  secret: string;
  key: KeyRecord;
}

function newKey(input: CreateKeyInput, secret: string, rotatedFrom: string | null): NewKey {
  return {
    id: uuidv7(),
    secretHash: hashKey(secret),
    hint: keyHint(secret),
    name: input.name,
    owner: input.owner,
    project: input.project ?? null,
    team: input.team ?? null,
    job: input.job ?? null,
    role: input.role ?? 'member',
    models: input.models ?? null,
    expiresAt: input.expiresAt ?? null,
    rotatedFrom,
  };
}

/** Key administration. Every change is an event, so the audit trail shows who did what to which key. */
export class KeysAdmin {
  constructor(
    private readonly store: KeyStore,
    private readonly outbox: Outbox,
    private readonly onChange: () => void = () => {},
    private readonly now: () => Date = () => new Date(),
  ) {}

  async create(
    input: CreateKeyInput,
    actor: string,
    rotatedFrom: string | null = null,
    secret = generateKeySecret(),
  ): Promise<IssuedKey> {
    if (input.expiresAt && input.expiresAt <= this.now()) {
      throw new AppError('invalid_request', 'expiresAt must be in the future.', { param: 'expiresAt' });
    }
    const key = await this.store.insert(newKey(input, secret, rotatedFrom));
    await this.record(key, rotatedFrom ? 'rotated' : 'created', actor);
    return { secret, key };
  }

  /**
   * Registers a bootstrap admin key unless it is already there (or, with `onlyWhenNoAdmin`, unless
   * any admin is): of replicas starting together, the one that inserts it records the change and
   * gets the key back; the others get undefined.
   */
  async createBootstrap(
    input: CreateKeyInput,
    actor: string,
    secret: string,
    options: { onlyWhenNoAdmin: boolean },
  ): Promise<IssuedKey | undefined> {
    const key = await this.store.insertBootstrap(newKey(input, secret, null), options);
    if (!key) return undefined;
    await this.record(key, 'created', actor);
    return { secret, key };
  }

  list(filter?: { project?: string; includeRevoked?: boolean }): Promise<KeyRecord[]> {
    return this.store.list(filter);
  }

  async get(id: string): Promise<KeyRecord> {
    const key = await this.store.findById(id);
    if (!key) throw new AppError('not_found', `No API key with id ${id}.`, { param: 'id' });
    return key;
  }

  async revoke(id: string, actor: string): Promise<KeyRecord> {
    const key = await this.store.revoke(id, this.now());
    if (!key) throw new AppError('not_found', `No API key with id ${id}.`, { param: 'id' });
    this.onChange();
    await this.record(key, 'revoked', actor);
    return key;
  }

  /** Issues a replacement with the same attributes; the old key keeps working for `graceSeconds`. */
  async rotate(id: string, graceSeconds: number, actor: string): Promise<IssuedKey> {
    const old = await this.get(id);
    if (old.revokedAt)
      throw new AppError('conflict', `API key ${old.hint} is revoked and cannot be rotated.`);
    const issued = await this.create(
      {
        name: old.name,
        owner: old.owner,
        project: old.project,
        team: old.team,
        job: old.job,
        role: old.role,
        models: old.models,
        expiresAt: old.expiresAt,
      },
      actor,
      old.id,
    );
    await this.store.expire(old.id, new Date(this.now().getTime() + graceSeconds * 1000));
    this.onChange();
    return issued;
  }

  private async record(key: KeyRecord, action: KeyChanged['action'], actor: string): Promise<void> {
    const event: CloudEvent<KeyChanged> = createEvent(
      GATEWAY_KEY_CHANGED,
      'flowloom/gateway',
      { keyId: key.id, action, actor, name: key.name, ...(key.project ? { project: key.project } : {}) },
      `key/${key.id}`,
    );
    await this.outbox.append([event]);
  }
}
