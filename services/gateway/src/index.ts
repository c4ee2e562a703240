export { gatewayMigrations } from './adapters/migrations.js';
export { PROTO_ROOT } from './grpc/load.js';
export {
  type AdminAuthorizer,
  type Gateway,
  type GatewayOptions,
  type HttpPlugin,
  startGateway,
} from './main.js';
