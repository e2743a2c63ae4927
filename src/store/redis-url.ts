/**
 * What a `cluster.redis_url` names: host, port, TLS, credentials and database. Pure (no I/O), so the
 * config validator can check a URL with the same rules the Redis client reads it by.
 */
export interface RedisTarget {
  host: string;
  port: number;
  tls: boolean;
  username: string;
  password: string;
  db: number;
}

/** Parses a redis:// URL; throws a RangeError naming what is wrong. */
export function parseRedisUrl(url: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError('redis: not a URL');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new RangeError(`redis: unsupported scheme ${u.protocol}`);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (host === '') throw new RangeError('redis: the URL has no host');
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,5}$/.test(path)) throw new RangeError('redis: the URL path must be a database number');
  let username: string;
  let password: string;
  try {
    username = decodeURIComponent(u.username);
    password = decodeURIComponent(u.password);
  } catch {
    // Never quote them: the password is a secret.
    throw new RangeError('redis: the user or password in the URL is not valid percent-encoding');
  }
  return { host, port: u.port === '' ? 6379 : Number(u.port), tls: u.protocol === 'rediss:', username, password, db: path === '' ? 0 : Number(path) };
}

/** Checks a store's `url` option by the client's own rules; throws a TypeError naming the store (`owner`) and the fault. */
export function checkRedisUrl(owner: string, url: string): void {
  try {
    parseRedisUrl(url);
  } catch (err) {
    throw new TypeError(`${owner}: url is not a usable redis:// or rediss:// URL (${(err as Error).message})`);
  }
}
