import { hashKey } from '../domain/keys.js';
import type { KeyStore } from '../ports/key-store.js';
import type { KeysAdmin } from './keys-admin.js';

/**
 * Makes sure an admin can get in: FLOWLOOM_ADMIN_KEY is registered (by hash) when given; otherwise,
 * on a store with no admin yet, one key is generated and handed back to be printed once.
 */
export async function bootstrapAdmin(
  store: KeyStore,
  admin: KeysAdmin,
  configuredKey: string | undefined,
): Promise<string | undefined> {
  if (configuredKey) {
    if (!(await store.findByHash(hashKey(configuredKey)))) {
      await admin.create(
        { name: 'bootstrap-admin', owner: 'admin', role: 'admin' },
        'system/bootstrap',
        null,
        configuredKey,
      );
    }
    return undefined;
  }
  if ((await store.countAdmins()) > 0) return undefined;
  const issued = await admin.create(
    { name: 'bootstrap-admin', owner: 'admin', role: 'admin' },
    'system/bootstrap',
  );
  return issued.secret;
}
