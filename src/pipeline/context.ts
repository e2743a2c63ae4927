/** Per-request state carried through the pipeline stages. One object per request, nothing else allocated up front. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision, HeaderList, Verdict } from '../events/index.js';
import type { IdBytes } from '../events/json-bytes.js';
import type { Backend } from '../balancer/index.js';
import type { CompiledRoute } from './routes.js';

/** An upstream exchange in progress, as the stages before and around the forwarding stage see it. */
export interface UpstreamExchange {
  /** The client failed its request body: stop the exchange without a verdict on the backend. */
  abandon(): void;
}

export class RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Request ID (validated client value or generated). */
  id = '';
  /** A generated id's bytes and their first word (CompletionRecord.idBytes); null for a client's id. */
  idBytes: IdBytes | null = null;
  idWord = 0;
  /** performance.now() at arrival, for latency. */
  readonly startedAt: number;
  /** Date.now() at arrival. */
  readonly time: number;
  /** The socket peer's address (IPv4-mapped IPv6 unwrapped): what X-Forwarded-For gets appended. */
  peerIp = '';
  /** The client's address: the peer, or the right-most untrusted X-Forwarded-For hop behind trusted proxies. */
  clientIp = '';
  /** URL path (no query). */
  path = '';
  /** Query string without "?". */
  query = '';
  route: CompiledRoute | null = null;
  backend: Backend | null = null;
  /** Authenticated identity: API key id or JWT sub. Never a secret. */
  consumer: string | undefined = undefined;
  decision: Decision | undefined = undefined;
  detail: Record<string, number | string> | undefined = undefined;
  /** Opinions of the policies that had one (null until the first); see CompletionRecord.verdicts. */
  verdicts: Verdict[] | null = null;
  errorCode: string | undefined = undefined;
  bytesIn = 0;
  bytesOut = 0;
  /** Headers the gateway adds to whatever response goes out (e.g. RateLimit fields). Flat [name, value, ...]. */
  extraHeaders: string[] | null = null;
  /** Headers sent to the client, once a response started (for the request log). */
  responseHeaders: HeaderList | undefined = undefined;
  /**
   * False when whoever set `responseHeaders` checked that they name no secret header (the proxy
   * does, from the list it writes): the publisher then skips their redaction. True (redact) otherwise.
   */
  responseSecrets = true;
  /** For an Upgrade (WebSocket) request: the bytes that arrived after the headers. null otherwise. */
  upgradeHead: Buffer | null = null;
  /** The whole request body, when it was read before a backend was chosen (server.request_buffer). */
  body: Buffer | null = null;
  /** The first chunks of a chunked body longer than server.request_buffer; the rest still streams from req. */
  bodyPrefix: Buffer[] | null = null;
  /** The upstream exchange the forwarding stage started (null before), so a stalled request body can abandon it. */
  exchange: UpstreamExchange | null = null;
  /** Set once the completion record was published. */
  finished = false;

  /** Index of the last stage dispatched (-1 before the first); managed by compose(). */
  stageIndex = -1;
  /** Index of the stage whose body is running synchronously now, -1 when none; managed by compose(). */
  running = -1;
  /** compose() installs these. */
  runNext: ((ctx: RequestContext) => void) | null = null;

  constructor(req: IncomingMessage, res: ServerResponse, startedAt: number, time: number) {
    this.req = req;
    this.res = res;
    this.startedAt = startedAt;
    this.time = time;
  }

  /** Continue with the next stage. */
  next(): void {
    this.runNext!(this);
  }

  /** Records a policy's opinion on this request (kept beside `decision`, which stays the one that shaped it). */
  addVerdict(verdict: Verdict): void {
    if (this.verdicts === null) this.verdicts = [verdict];
    else this.verdicts.push(verdict);
  }

  /** Adds a header to the eventual response, whoever writes it (proxy or error writer). */
  addHeader(name: string, value: string): void {
    if (this.extraHeaders === null) this.extraHeaders = [name, value];
    else this.extraHeaders.push(name, value);
  }
}
