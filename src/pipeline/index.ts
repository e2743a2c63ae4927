/**
 * Pipeline: the request context, compose(), the route table and the small stages every request
 * passes (request ID, client IP). Stages are factories returning named functions; no I/O here.
 */
export { RequestContext } from './context.js';
export { compose, type Stage } from './compose.js';
export { RouteTable, upstreamPath, type CompiledRoute } from './routes.js';
export { requestId, pickRequestId, newRequestId } from './request-id.js';
export { ClientIpResolver, normalizeIp, isLoopback } from './client-ip.js';
export { isUnsafePath } from './path.js';
export { clientKey } from './client-key.js';
