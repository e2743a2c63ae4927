/** Reading a config file: YAML with positions, `${ENV}` substitution, schema validation, freezing. */
import { constants } from 'node:fs';
import { open, readlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { ConfigError, type ConfigProblem } from './problems.js';
import { deepFreeze } from './runtime.js';
import { configSchema, crossCheck, type Config } from './schema.js';

const ENV_REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Reads, validates and freezes a config file in this thread. Throws ConfigError with every problem.
 * The gateway reads its config through `loadConfig` (load-isolated.ts), which runs this in a worker.
 */
export async function loadConfigInProcess(file: string, env: NodeJS.ProcessEnv = process.env, opts: ReadOptions = {}): Promise<Config> {
  let text: string;
  try {
    text = await readBounded(file);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError([{ file, line: 0, col: 0, key: '', message: `cannot read config: ${reason}` }]);
  }
  return parseConfig(text, file, env, opts);
}

/** How a read judges the file beyond the schema. */
export interface ReadOptions {
  /**
   * Refuse a file with no settings (empty, whitespace, only comments, or `~`), which is otherwise a
   * valid config with every default and no routes. A reload sets it: a file caught while an editor
   * or a deploy rewrites it in place is empty for a moment, and reloading it dropped every route.
   */
  refuseEmpty?: boolean;
}

/** The problem of a file with no settings read with `refuseEmpty`. */
export const NO_SETTINGS = 'the file has no settings (it is empty or holds only comments); a reload keeps the config in force. To run with every default, restart the gateway with this file';

/**
 * The file's text, at most MAX_CONFIG_BYTES. A regular file is checked by its size first; a pipe
 * (`--config <(envsubst < gateway.yml)`) or a device has none, so it is read until it ends or
 * passes the bound, never further. The file is opened and read without blocking, and a pipe is
 * waited for with timers: a blocking open or read of a pipe nobody writes to would park one of libuv's
 * four pool threads until a writer came (the reader's time limit in load-isolated.ts ends the
 * reader, not that thread), and a few such reloads would leave the gateway's own file work
 * waiting behind them.
 */
async function readBounded(file: string): Promise<string> {
  const tooLarge = (size: string) => new ConfigError([{ file, line: 1, col: 1, key: '', message: `config file is larger than ${MAX_CONFIG_BYTES} bytes (${size})` }]);
  // Non-blocking whatever the file is (a regular file reads the same), and judged by what was
  // opened, not by a look at the path before (which a rename could change in between).
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw new Error('it is a directory');
    if (info.isFile() && info.size > MAX_CONFIG_BYTES) throw tooLarge(String(info.size));
    // A named pipe may get a writer later; an anonymous one (a process substitution's /dev/fd/63)
    // cannot, so its end is final even when it gave nothing.
    const waitForWriter = info.isFIFO() && !(await isAnonymousPipe(handle.fd));
    const buf = Buffer.allocUnsafe(MAX_CONFIG_BYTES + 1);
    let len = 0;
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buf, len, buf.length - len, null));
      } catch (err) {
        // A pipe whose writer has not written yet: look again shortly (until the reader's time runs out).
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        await sleep(PIPE_POLL_MS);
        continue;
      }
      if (bytesRead === 0) {
        // The end, except for a named pipe that has given nothing yet: with no writer yet it reads
        // as the end too, and an empty config is a valid one, so a gateway would start without
        // routes. It is looked at again until a writer writes, or the reader's time runs out.
        if (len > 0 || !waitForWriter) break;
        await sleep(PIPE_POLL_MS);
        continue;
      }
      len += bytesRead;
      if (len > MAX_CONFIG_BYTES) throw tooLarge('more than that read');
    }
    return buf.toString('utf8', 0, len);
  } finally {
    await handle.close();
  }
}

/** Whether an open pipe has no name (Linux shows it as `pipe:[inode]`); false where that cannot be told. */
async function isAnonymousPipe(fd: number): Promise<boolean> {
  try {
    return (await readlink(`/proc/self/fd/${fd}`)).startsWith('pipe:');
  } catch {
    return false;
  }
}

/** How often a pipe that has nothing to read yet is looked at again (ms). */
const PIPE_POLL_MS = 10;

/** Validates config text; `file` is only used in messages. */
export function parseConfig(text: string, file = 'config.yml', env: NodeJS.ProcessEnv = process.env, opts: ReadOptions = {}): Config {
  const lineCounter = new LineCounter();
  if (text.length > MAX_CONFIG_BYTES / 4 && Buffer.byteLength(text) > MAX_CONFIG_BYTES) {
    throw new ConfigError([{ file, line: 1, col: 1, key: '', message: `config file is larger than ${MAX_CONFIG_BYTES} bytes` }]);
  }
  // uniqueKeys is checked below in one linear pass: the library's own check is quadratic.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const problems: ConfigProblem[] = [];
  const at = (offset: number | undefined, key: string, message: string) => {
    const pos = offset === undefined ? { line: 0, col: 0 } : lineCounter.linePos(offset);
    problems.push({ file, line: pos.line, col: pos.col, key, message });
  };
  for (const err of doc.errors) at(err.pos[0], '', err.message.split('\n')[0]!);
  visit(doc, {
    Map(_k, map) {
      const keys = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const k = String(pair.key.value);
        if (keys.has(k)) at(pair.key.range?.[0], k, 'map keys must be unique: this key appears twice in the same mapping');
        keys.add(k);
      }
    },
  });
  if (problems.length > 0) throw new ConfigError(problems.slice(0, MAX_PROBLEMS));
  if (opts.refuseEmpty && (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null))) {
    throw new ConfigError([{ file, line: 1, col: 1, key: '', message: NO_SETTINGS }]);
  }

  const envFailed = new Set<string>();
  substituteEnv(doc, env, (node, path, message) => {
    envFailed.add(path);
    at(node.range?.[0], path, message);
  });

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    // Alias bombs and dangling aliases: point at the first alias in the file.
    let alias: Node | undefined;
    visit(doc, {
      Alias(_k, node) {
        alias ??= node;
      },
    });
    at(alias?.range?.[0], '', `${(err as Error).message} (YAML aliases)`);
    throw new ConfigError(problems);
  }
  const result = configSchema.safeParse(raw);
  const issues: { path: (string | number)[]; message: string; code?: string; keys?: string[]; related?: (string | number)[] }[] = [];
  for (const issue of result.error?.issues ?? []) {
    issues.push({ path: issue.path as (string | number)[], message: issue.message, code: issue.code, keys: issue.code === 'unrecognized_keys' ? issue.keys : undefined });
  }
  // Cross-entry checks run on the raw input too, so they are reported with every other problem.
  issues.push(...crossCheck(raw));
  if (issues.length === 0 && problems.length === 0) return deepFreeze(result.data!);

  const keyNodesOf = new Map<string, Map<string, Node>>();
  let dropped = 0;
  for (const issue of issues) {
    if (problems.length >= MAX_PROBLEMS) {
      dropped += issue.keys?.length ?? 1;
      continue;
    }
    const path = issue.path;
    if (envFailed.has(formatPath(path))) continue;
    if (issue.code === 'unrecognized_keys') {
      // Point at each unknown key itself.
      const parentKey = formatPath(path);
      let keyNodes = keyNodesOf.get(parentKey);
      if (keyNodes === undefined) {
        keyNodes = keyNodesIn(doc, path);
        keyNodesOf.set(parentKey, keyNodes);
      }
      const fallback = nearestNode(doc, path).node;
      for (const k of issue.keys ?? []) {
        if (problems.length >= MAX_PROBLEMS) {
          dropped++;
          continue;
        }
        at((keyNodes.get(k) ?? fallback)?.range?.[0], formatPath([...path, k]), 'unknown key (check the spelling; see docs/configuration.md)');
      }
      continue;
    }
    const { node, missing } = nearestNode(doc, path);
    let message = missing && issue.code === 'invalid_type' && /undefined/.test(issue.message) ? 'is required' : issue.message;
    if (issue.related !== undefined) {
      // A second place the problem involves, named by its own file:line:col.
      const other = nearestNode(doc, issue.related).node?.range?.[0];
      const pos = other === undefined ? { line: 0, col: 0 } : lineCounter.linePos(other);
      message = message.replace('{related}', `${file}:${pos.line}:${pos.col} (${formatPath(issue.related)})`);
    }
    at(node?.range?.[0], formatPath(path), message);
  }
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  if (dropped > 0) {
    problems.push({ file, line: 0, col: 0, key: '', message: `…and ${dropped} more problems (only the first ${MAX_PROBLEMS} are listed)` });
  }
  throw new ConfigError(problems);
}

/** At most this many problems are listed: a mangled file must not produce megabytes of errors. */
const MAX_PROBLEMS = 100;
/** A config is a few KB; anything past this is a mistake or an attack. */
const MAX_CONFIG_BYTES = 1024 * 1024;

function substituteEnv(doc: Document, env: NodeJS.ProcessEnv, fail: (node: Node, path: string, message: string) => void): void {
  visit(doc, {
    Scalar(_key, node, path) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const parts: (string | number)[] = [];
      for (let i = 0; i < path.length; i++) {
        const a = path[i];
        if (isPair(a)) parts.push(isScalar(a.key) ? String(a.key.value) : '?');
        else if (isSeq(a)) parts.push(a.items.indexOf((i + 1 < path.length ? path[i + 1] : node) as never));
      }
      const keyPath = formatPath(parts);
      node.value = node.value.replace(ENV_REF, (match, name: string | undefined, fallback: string | undefined) => {
        if (match === '$${') return '${';
        const value = env[name!];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        fail(node, keyPath, `environment variable ${name} is not set`);
        return '';
      });
      // An unquoted `${PORT:-8080}` means what the same text would mean typed in: a number or a boolean.
      if (node.type === 'PLAIN' && typeof node.value === 'string') {
        if (/^-?\d+(\.\d+)?$/.test(node.value)) node.value = Number(node.value);
        else if (node.value === 'true' || node.value === 'false') node.value = node.value === 'true';
      }
    },
  });
}

function nearestNode(doc: Document, path: (string | number)[]): { node: Node | undefined; missing: boolean } {
  for (let n = path.length; n >= 0; n--) {
    const node = (n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true)) as Node | undefined;
    if (node && typeof node === 'object' && 'range' in node) return { node, missing: n < path.length };
  }
  return { node: undefined, missing: true };
}

function keyNodesIn(doc: Document, path: (string | number)[]): Map<string, Node> {
  const out = new Map<string, Node>();
  const parent = path.length === 0 ? doc.contents : doc.getIn(path, true);
  if (!isMap(parent)) return out;
  for (const pair of parent.items) {
    if (isScalar(pair.key)) out.set(String(pair.key.value), pair.key);
  }
  return out;
}

function formatPath(path: (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}
