/**
 * Pipeline: the request context, compose(), the route table and the small stages every request
 * passes (request ID, client IP). Stages are factories returning named functions; no I/O here.
 */
export { RequestContext, type UpstreamExchange } from './context.js';
export { compose, type Next, type Stage, type StageWithNext } from './compose.js';
export { RouteTable, upstreamPath, type CompiledRoute } from './routes.js';
export { requestId, pickRequestId, newRequestId } from './request-id.js';
export { ClientIpResolver, normalizeIp, isLoopback, peerIpOf } from './client-ip.js';
export { PHASES, StageRegistry, type Phase, type RequestKind, type StageEntry, type StageRegistrar } from './phases.js';
export { isUnsafePath } from './path.js';
export { BucketKeys, clientKey } from './client-key.js';
