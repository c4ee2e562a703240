import type { Registry } from '@flowloom/telemetry';
import type { Authenticator } from '../app/authenticate.js';
import type { ChatService } from '../app/chat.js';
import type { EmbeddingsService } from '../app/embeddings.js';
import type { KeysAdmin } from '../app/keys-admin.js';
import type { PolicyGate } from '../app/policy-gate.js';
import type { Router } from '../app/router.js';
import type { GatewayMetrics } from '../ports/metrics.js';
import type { OpenApiDocument } from './routes/openapi.js';

/** What the HTTP entry points need; main.ts builds it. */
export interface HttpDeps {
  auth: Authenticator;
  chat: ChatService;
  embeddings: EmbeddingsService;
  keys: KeysAdmin;
  /** The inline policy decision, job stops and the active bundle. */
  policy?: PolicyGate;
  router: Router;
  metrics: GatewayMetrics;
  registry: Registry;
  maxBodyBytes: number;
  /** Checks the dependencies a request needs (database, bus); throws with a reason when not ready. */
  readiness: () => Promise<Record<string, 'ok' | string>>;
  /** OpenAPI documents of other services' routes mounted on this server (`flowloom up`). */
  mountedApiDocuments?: readonly OpenApiDocument[];
}
