import { type Config, providerApiKey } from '@flowloom/config';
import {
  createHttpProviderClient,
  createLocalProvider,
  httpProviders,
  type ProviderClient,
} from '@flowloom/providers';
import { LOCAL_PROVIDER } from './domain/routing.js';

/** One client per configured provider, plus the built-in local provider. */
export function createProviderClients(
  config: Pick<Config, 'providers'>,
  env: Record<string, string | undefined>,
): Map<string, ProviderClient> {
  const clients = new Map<string, ProviderClient>([[LOCAL_PROVIDER, createLocalProvider(LOCAL_PROVIDER)]]);
  for (const [name, p] of Object.entries(config.providers)) {
    if (p.kind === 'local') {
      clients.set(name, createLocalProvider(name));
      continue;
    }
    const apiKey = providerApiKey(p, env);
    clients.set(
      name,
      createHttpProviderClient(
        {
          name,
          kind: p.kind,
          ...(p.baseUrl ? { baseUrl: p.baseUrl } : {}),
          ...(apiKey ? { apiKey } : {}),
          ...(p.apiVersion ? { apiVersion: p.apiVersion } : {}),
          ...(p.headers ? { headers: p.headers } : {}),
        },
        httpProviders[p.kind],
      ),
    );
  }
  return clients;
}
