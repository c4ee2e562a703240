export { gatewayMigrations } from './adapters/migrations.js';
export { adminLoginGrantsSql, checkLoginName } from './adapters/migrations-grants.js';
export {
  type AdminAuthorizer,
  adminAuthorizerFor,
  type RecordedAdminAuthorizer,
  recordedAdminAuthorizer,
} from './admin-authorizer.js';
export { PROTO_ROOT } from './grpc/load.js';
export { endToEndHeaders } from './http/peer-request.js';
export type { OpenApiDocument } from './http/routes/openapi.js';
export { policyApiDocument } from './http/routes/openapi-policy.js';
export {
  PEER_ROUTES,
  type Peer,
  type PeerForwardingOptions,
  registerPeerForwarding,
} from './http/routes/peer-forwarding.js';
export type { ServedRoute } from './http/server.js';
export {
  type Gateway,
  type GatewayOptions,
  type HttpPlugin,
  startGateway,
} from './main.js';
export type { ParkedEvent, RedriveOutcome } from './ports/parked-events.js';
