export { gatewayMigrations } from './adapters/migrations.js';
export {
  type AdminAuthorizer,
  adminAuthorizerFor,
  type RecordedAdminAuthorizer,
  recordedAdminAuthorizer,
} from './admin-authorizer.js';
export { PROTO_ROOT } from './grpc/load.js';
export type { OpenApiDocument } from './http/routes/openapi.js';
export type { ServedRoute } from './http/server.js';
export {
  type Gateway,
  type GatewayOptions,
  type HttpPlugin,
  startGateway,
} from './main.js';
