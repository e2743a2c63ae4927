/** Small loopback clients for the benchmark: one-shot HTTP requests, readiness polling, a minimal Redis (RESP) command. */
import { request } from 'node:http';
import { connect } from 'node:net';

/** One HTTP request on a fresh connection (no agent, so nothing is left open). */
export function httpGet(url, headers = {}, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * An open server-sent-events stream (a dashboard left open in a browser): reads everything the
 * gateway sends and counts the `request` events. `close()` ends it and resolves with the count.
 */
export function openEventStream(url, headers = {}) {
  let events = 0;
  let carry = '';
  let req;
  const opened = new Promise((resolve, reject) => {
    req = request(url, { method: 'GET', headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`event stream answered ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        const text = carry + chunk;
        for (let i = text.indexOf('\nevent: request\n'); i !== -1; i = text.indexOf('\nevent: request\n', i + 1)) events++;
        // An event line split across two chunks is counted once, in the next.
        carry = text.slice(-16);
      });
      res.on('error', () => {});
      resolve();
    });
    req.on('error', reject);
    req.end();
  });
  return {
    opened,
    close() {
      req.destroy();
      return events;
    },
  };
}

/**
 * Polls `probe()` until it resolves, the child exits, or the deadline passes.
 * Returns null when ready, otherwise the reason it never came up.
 */
export async function waitUntil(probe, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exited) return `${child.name} ${child.describeExit()} before answering`;
    try {
      await probe();
      return null;
    } catch (err) {
      last = err.message;
    }
    await sleep(100);
  }
  return `${child.name} did not answer within ${timeoutMs} ms (last: ${last})`;
}

function encode(args) {
  let s = `*${args.length}\r\n`;
  for (const a of args) s += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
  return s;
}

/** Sends one Redis command on a fresh connection and resolves with the raw first reply line(s) as text. */
export function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => sock.destroy(new Error('redis timeout')), 2000);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(encode(args)));
    sock.on('data', (d) => {
      buf += d;
      // Simple and bulk replies are enough here (PING, INFO, DBSIZE).
      if (buf.startsWith('$')) {
        const nl = buf.indexOf('\r\n');
        const len = Number(buf.slice(1, nl));
        if (len < 0 || Buffer.byteLength(buf) >= nl + 2 + len + 2) done(buf.slice(nl + 2, nl + 2 + len));
      } else if (buf.endsWith('\r\n')) {
        if (buf.startsWith('-')) {
          clearTimeout(timer);
          sock.destroy();
          reject(new Error(buf.trim()));
        } else done(buf.slice(1).trim());
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    function done(value) {
      clearTimeout(timer);
      sock.end();
      resolve(value);
    }
  });
}

/** Redis INFO stats counter total_commands_processed (NaN if unavailable). */
export async function redisCommandsProcessed(port) {
  try {
    const info = await redisCommand(port, 'INFO', 'stats');
    const m = info.match(/total_commands_processed:(\d+)/);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}
