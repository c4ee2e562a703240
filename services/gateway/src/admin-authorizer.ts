import type { EventBus } from '@flowloom/bus';
import type { Config } from '@flowloom/config';
import { uuidv7 } from '@flowloom/contracts';
import { type Db, migrateUnlessApplied } from '@flowloom/store';
import { createLogger } from '@flowloom/telemetry';
import { gatewayMigrations } from './adapters/migrations.js';
import { SqlKeyStore } from './adapters/sql-key-store.js';
import { OutboxRelay, SqlOutbox } from './adapters/sql-outbox.js';
import { AuthEvents } from './app/auth-events.js';
import { Authenticator, presentedKey } from './app/authenticate.js';
import type { KeyAncestor } from './domain/keys.js';

/** An authorized admin: its key, the key's owner, and the key's lineage for second-person checks. */
export interface AuthorizedAdmin {
  actor: string;
  keyId: string;
  owner: string;
  /** The key has no creator: the bootstrap admin key (or one older than lineage). */
  root: boolean;
  /** Keys whose holders could have known this key's secret, nearest first. */
  lineage: KeyAncestor[];
}

/** Authenticates a request's key (Bearer or x-api-key) and requires the admin role; throws AppError otherwise. */
export type AdminAuthorizer = (
  headers: Record<string, string | string[] | undefined>,
  request?: { requestId?: string; sourceIp?: string },
) => Promise<AuthorizedAdmin>;

export function adminAuthorizer(auth: Authenticator): AdminAuthorizer {
  return async (headers, request) => {
    const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
    const key = await auth.authenticateAdmin(
      presentedKey({ authorization: first(headers.authorization), 'x-api-key': first(headers['x-api-key']) }),
      {
        surface: 'admin',
        api: 'admin',
        requestId: request?.requestId ?? uuidv7(),
        ...(request?.sourceIp ? { sourceIp: request.sourceIp } : {}),
      },
    );
    return {
      actor: `key/${key.id} (${key.name})`,
      keyId: key.id,
      owner: key.owner,
      root: key.createdBy === null,
      lineage: await auth.lineage(key.id),
    };
  };
}

/**
 * Admins checked against the gateway's key table in the shared database, recording nothing: for
 * tests composing a service without an audit trail. Served admin APIs use `recordedAdminAuthorizer`
 * (`flowloom serve`) or the gateway's own authorizer (`flowloom up`).
 */
export function adminAuthorizerFor(db: Db): AdminAuthorizer {
  return adminAuthorizer(new Authenticator(new SqlKeyStore(db)));
}

export interface RecordedAdminAuthorizer {
  authorize: AdminAuthorizer;
  /** Records what open failure windows counted, then publishes what the outbox still holds. */
  close(): Promise<void>;
}

/**
 * For a service running apart from the gateway (`flowloom serve policy|audit`): admins are checked
 * against the gateway's key table in the shared database, so each approver is a person with a key,
 * and their logins and refused keys are recorded as the gateway's auth events, with the same
 * aggregation, and `source` naming this service.
 *
 * The events go to the gateway's outbox table in the same database, and a relay in this process
 * publishes them to the bus (several relays, in gateways or here, take turns under one advisory lock,
 * so order holds). The policy service's own outbox would do for policy alone; the audit service has
 * none, and appending its logins straight into its ledger would keep them from the bus's other
 * consumers. One path for both: durable before the request is answered, published at least once, and
 * appended to the ledger once, since the ledger deduplicates by event id.
 */
export async function recordedAdminAuthorizer(
  db: Db,
  config: Config,
  service: 'policy' | 'audit',
  bus: EventBus | undefined,
): Promise<RecordedAdminAuthorizer> {
  // The outbox table (and api_keys) are the gateway's: created here if no gateway or `flowloom
  // migrate` has yet; left alone otherwise, so a login without DDL rights (granted SELECT on api_keys
  // and INSERT on outbox) starts.
  await migrateUnlessApplied(db, gatewayMigrations);
  const log = createLogger({ service, level: config.logLevel });
  // Without a bus (no Kafka configured) a gateway's relay publishes the rows.
  const relay = bus
    ? new OutboxRelay(db, bus, {
        onError: (err) => log.warn({ err }, 'auth events: publish failed, will retry'),
        source: `flowloom/${service}`,
        onParked: ({ event, reason }) =>
          log.error(
            { eventId: event.id, type: event.type, reason },
            'auth events: the bus refused an event for good; it is parked in the outbox with a stand-in on the audit trail (flowloom outbox parked)',
          ),
      })
    : undefined;
  const events = new AuthEvents(new SqlOutbox(db, () => relay?.wake()), {
    source: `flowloom/${service}`,
    failureWindowMs: config.authFailureWindowMs,
    onError: (err) => log.warn({ err }, 'authentication event could not be recorded'),
  });
  const auth = new Authenticator(new SqlKeyStore(db));
  auth.recordTo(events);
  relay?.start();
  const unsubscribe = bus?.onConnected?.(() => relay?.retryNow());
  return {
    authorize: adminAuthorizer(auth),
    async close() {
      await events.close();
      unsubscribe?.();
      await relay?.stop();
    },
  };
}
