import {
  type CloudEvent,
  createEvent,
  GATEWAY_KEY_CHANGED,
  type KeyChanged,
  uuidv7,
} from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import {
  generateKeySecret,
  hashKey,
  type KeyRecord,
  type KeyRole,
  type KeySuspension,
  keyHint,
} from '../domain/keys.js';
import type { KeyStore, NewKey } from '../ports/key-store.js';
import type { Outbox } from '../ports/outbox.js';

export interface CreateKeyInput {
  name: string;
  owner: string;
  project?: string | null;
  team?: string | null;
  job?: string | null;
  /** A job policy for the key: a policy version id or unique prefix (bound by its full id). */
  policy?: string | null;
  role?: KeyRole;
  models?: string[] | null;
  expiresAt?: Date | null;
}

/**
 * Resolves a job policy to bind to a key: the version's full id once it is fetched, compiled and
 * checked to only add restrictions; an AppError naming the problem otherwise.
 */
export type JobPolicyBinder = (idOrPrefix: string) => Promise<{ name: string; version: string }>;

/** Who changes a key: a label for the audit trail, and the admin key used (none for the system). */
export interface KeyActor {
  label: string;
  keyId: string | null;
}

export interface IssuedKey {
  /** The secret, returned exactly once. */
  secret: string;
  key: KeyRecord;
}

/** A rotation: the key replaced, and by whom (the rotator is handed the new secret). */
interface Rotation {
  from: KeyRecord;
  by: string | null;
}

/** A new key descends from its creator; a rotated one keeps the old key's creator (its lineage). */
function newKey(
  input: CreateKeyInput,
  secret: string,
  createdBy: string | null,
  rotation?: Rotation,
): NewKey {
  return {
    id: uuidv7(),
    secretHash: hashKey(secret),
    hint: keyHint(secret),
    name: input.name,
    owner: input.owner,
    project: input.project ?? null,
    team: input.team ?? null,
    job: input.job ?? null,
    policy: input.policy ?? null,
    role: input.role ?? 'member',
    models: input.models ?? null,
    expiresAt: input.expiresAt ?? null,
    rotatedFrom: rotation?.from.id ?? null,
    createdBy: rotation ? rotation.from.createdBy : createdBy,
    rotatedBy: rotation?.by ?? null,
  };
}

/** Key administration. Every change is an event, so the audit trail shows who did what to which key. */
export class KeysAdmin {
  constructor(
    private readonly store: KeyStore,
    private readonly outbox: Outbox,
    private readonly onChange: () => void = () => {},
    private readonly now: () => Date = () => new Date(),
    /** Without one (a gateway with no policy service), a key cannot have a job policy. */
    private readonly bindPolicy?: JobPolicyBinder,
  ) {}

  async create(input: CreateKeyInput, actor: KeyActor, rotation?: Rotation): Promise<IssuedKey> {
    if (input.expiresAt && input.expiresAt <= this.now()) {
      throw new AppError('invalid_request', 'expiresAt must be in the future.', { param: 'expiresAt' });
    }
    let policy = input.policy ?? null;
    if (policy !== null) {
      if (!this.bindPolicy)
        throw new AppError(
          'invalid_request',
          'This gateway has no policy service to fetch a job policy from (it enforces a policy file); create the key without "policy", or run the platform with the policy service.',
          { param: 'policy' },
        );
      policy = (await this.bindPolicy(policy)).version;
    }
    const secret = generateKeySecret();
    const key = await this.store.insert(newKey({ ...input, policy }, secret, actor.keyId, rotation));
    await this.record(key, rotation ? 'rotated' : 'created', actor.label);
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

  async revoke(id: string, actor: KeyActor): Promise<KeyRecord> {
    const key = await this.store.revoke(id, this.now());
    if (!key) throw new AppError('not_found', `No API key with id ${id}.`, { param: 'id' });
    this.onChange();
    await this.record(key, 'revoked', actor.label);
    return key;
  }

  /**
   * Suspends a key (a policy's suspend_key): refused until an admin resumes it. A revoked key stays
   * revoked and is not suspended; a suspended one keeps its first suspension.
   */
  async suspend(id: string, actor: KeyActor, suspension: KeySuspension): Promise<KeyRecord> {
    const key = await this.store.suspend(id, this.now(), suspension);
    if (!key) throw new AppError('not_found', `No API key with id ${id}.`, { param: 'id' });
    this.onChange();
    if (key.suspension === null || key.revokedAt) return key;
    await this.record(key, 'suspended', actor.label, {
      reason: suspension.reason,
      ...(suspension.decisionId ? { decisionId: suspension.decisionId } : {}),
      ...(suspension.policy ? { policy: suspension.policy } : {}),
      ...(suspension.version ? { version: suspension.version } : {}),
      ...(suspension.rule ? { rule: suspension.rule } : {}),
    });
    return key;
  }

  /** Lifts a suspension; the key works again at once. */
  async resume(id: string, actor: KeyActor): Promise<KeyRecord> {
    const before = await this.get(id);
    if (before.revokedAt)
      throw new AppError('conflict', `API key ${before.hint} is revoked, not suspended; create a new key.`);
    if (!before.suspendedAt)
      throw new AppError('conflict', `API key ${before.hint} is not suspended; nothing to resume.`);
    const key = await this.store.resume(id);
    if (!key) throw new AppError('not_found', `No API key with id ${id}.`, { param: 'id' });
    this.onChange();
    await this.record(key, 'resumed', actor.label, {
      ...(before.suspension?.decisionId ? { decisionId: before.suspension.decisionId } : {}),
    });
    return key;
  }

  /** Issues a replacement with the same attributes; the old key keeps working for `graceSeconds`. */
  async rotate(id: string, graceSeconds: number, actor: KeyActor): Promise<IssuedKey> {
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
        policy: old.policy ?? null,
        role: old.role,
        models: old.models,
        expiresAt: old.expiresAt,
      },
      actor,
      { from: old, by: actor.keyId },
    );
    await this.store.expire(old.id, new Date(this.now().getTime() + graceSeconds * 1000));
    this.onChange();
    return issued;
  }

  private async record(
    key: KeyRecord,
    action: KeyChanged['action'],
    actor: string,
    extra: Partial<KeyChanged> = {},
  ): Promise<void> {
    const event: CloudEvent<KeyChanged> = createEvent(
      GATEWAY_KEY_CHANGED,
      'flowloom/gateway',
      {
        keyId: key.id,
        action,
        actor,
        name: key.name,
        ...(key.project ? { project: key.project } : {}),
        ...(key.createdBy ? { createdBy: key.createdBy } : {}),
        ...(key.rotatedBy ? { rotatedBy: key.rotatedBy } : {}),
        ...(key.policy ? { jobPolicy: key.policy } : {}),
        ...extra,
      },
      `key/${key.id}`,
    );
    await this.outbox.append([event]);
  }
}
