// The proto loading every FlowLoom server shares; kept here for the gateway's own imports.
export { loadService, PROTO_OPTIONS, PROTO_ROOT } from '@flowloom/grpc';
