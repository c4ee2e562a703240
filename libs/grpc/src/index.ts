export {
  GrpcHealth,
  HEALTH_SERVICE,
  type HealthOptions,
  type ServingCheck,
  type ServingStatus,
} from './health.js';
export { credentialHeaders, listen, loadService, PROTO_OPTIONS, PROTO_ROOT, peerAddress } from './proto.js';
