/**
 * Proxy: the forwarding stage (undici Pool per backend, streaming both ways, timeouts, one retry
 * of a refused idempotent request on another backend) and the WebSocket tunnel. It never writes
 * logs or metrics itself: the pipeline publishes the completion record.
 */
export { forward, type ForwardOptions } from './forward.js';
export { BodyWatch } from './body-watch.js';
export { upstreamHeaders, responseHeaderList } from './headers.js';
export { tunnel, upgradeResponse, type TunnelOptions } from './tunnel.js';
export { acceptedUpgrades, upgradesFor, DEFAULT_UPGRADES } from './upgrade.js';
export { bufferBody, type BodyOptions } from './body.js';
