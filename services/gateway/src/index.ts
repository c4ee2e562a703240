export { PROTO_ROOT } from './grpc/load.js';
export { type Gateway, type GatewayOptions, startGateway } from './main.js';
