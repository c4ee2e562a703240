import { uuidv7 } from '@flowloom/contracts';
import type { Db } from '@flowloom/store';
import { SqlKeyStore } from './adapters/sql-key-store.js';
import { Authenticator, presentedKey } from './app/authenticate.js';

/** Authenticates a request's key (Bearer or x-api-key) and requires the admin role; throws AppError otherwise. */
export type AdminAuthorizer = (
  headers: Record<string, string | string[] | undefined>,
  request?: { requestId?: string; sourceIp?: string },
) => Promise<{ actor: string; keyId: string; owner: string }>;

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
    return { actor: `key/${key.id} (${key.name})`, keyId: key.id, owner: key.owner };
  };
}

/**
 * For a service running apart from the gateway (`flowloom serve policy|audit`): admins are checked
 * against the gateway's key table in the shared database, so each approver is a person with a key.
 */
export function adminAuthorizerFor(db: Db): AdminAuthorizer {
  return adminAuthorizer(new Authenticator(new SqlKeyStore(db)));
}
