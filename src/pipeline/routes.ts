/**
 * The route table, compiled once at config load: longest prefix wins, on a path-segment boundary
 * ("/api/v1" matches "/api/v1" and "/api/v1/x", never "/api/v10").
 */
import type { RouteConfig } from '../config/index.js';
import { normalizePrefix } from '../config/index.js';
import type { Backend, Strategy } from '../balancer/index.js';

export interface CompiledRoute {
  /** The configured prefix, normalized (no trailing slash). Also the metrics label. */
  readonly prefix: string;
  readonly config: RouteConfig;
  readonly backends: Backend[];
  /** The route's balancing strategy; bound once at start-up, after modules registered theirs. */
  selector: Strategy;
  /** Upstream response-header timeout for this route, ms. */
  readonly timeoutMs: number;
  readonly stripPrefix: boolean;
  readonly isPublic: boolean;
}

export class RouteTable {
  /** Sorted longest prefix first. */
  readonly #routes: CompiledRoute[];
  readonly #root: CompiledRoute | undefined;

  constructor(routes: CompiledRoute[]) {
    this.#routes = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
    this.#root = routes.find((r) => r.prefix === '/');
  }

  get routes(): readonly CompiledRoute[] {
    return this.#routes;
  }

  /** Finds the route for a URL path (no query). */
  match(path: string): CompiledRoute | null {
    const routes = this.#routes;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      const p = r.prefix;
      if (path.startsWith(p) && (path.length === p.length || path.charCodeAt(p.length) === 47 /* / */)) return r;
    }
    return this.#root ?? null;
  }

  find(prefix: string): CompiledRoute | undefined {
    const norm = normalizePrefix(prefix);
    return this.#routes.find((r) => r.prefix === norm);
  }
}

/** The upstream path: the full path and query, with the route prefix removed when strip_prefix is set. */
export function upstreamPath(route: CompiledRoute, url: string): string {
  if (!route.stripPrefix || route.prefix === '/') return url;
  const rest = url.slice(route.prefix.length);
  return rest === '' || rest.charCodeAt(0) === 63 /* ? */ ? '/' + rest : rest;
}
