import { AppError } from '@flowloom/errors';
import type { Db } from '@flowloom/store';
import { SqlKeyStore } from './adapters/sql-key-store.js';
import { Authenticator, presentedKey } from './app/authenticate.js';

/** Authenticates a request's key (Bearer or x-api-key) and requires the admin role; throws AppError otherwise. */
export type AdminAuthorizer = (
  headers: Record<string, string | string[] | undefined>,
) => Promise<{ actor: string; keyId: string; owner: string }>;

export function adminAuthorizer(auth: Authenticator): AdminAuthorizer {
  return async (headers) => {
    const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
    const key = await auth.authenticate(
      presentedKey({ authorization: first(headers.authorization), 'x-api-key': first(headers['x-api-key']) }),
    );
    if (key.role !== 'admin') throw new AppError('forbidden', 'This endpoint needs an admin key.');
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
