/** Reading a config file: YAML with positions, `${ENV}` substitution, schema validation, freezing. */
import { readFile } from 'node:fs/promises';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { configSchema, type Config } from './schema.js';

/** One problem in a config file, located at `file:line:col`. */
export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  key: string;
  message: string;
}

/** Thrown when a config cannot be used; `problems` lists every one found, not just the first. */
export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col} ${p.key || '(top level)'}: ${p.message}`;
}

const ENV_REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Reads, validates and freezes a config file. Throws ConfigError with every problem. */
export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError([{ file, line: 0, col: 0, key: '', message: `cannot read config: ${reason}` }]);
  }
  return parseConfig(text, file, env);
}

/** Validates config text; `file` is only used in messages. */
export function parseConfig(text: string, file = 'config.yml', env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  const at = (offset: number | undefined, key: string, message: string) => {
    const pos = offset === undefined ? { line: 0, col: 0 } : lineCounter.linePos(offset);
    problems.push({ file, line: pos.line, col: pos.col, key, message });
  };
  for (const err of doc.errors) at(err.pos[0], '', err.message.split('\n')[0]!);
  if (problems.length > 0) throw new ConfigError(problems);

  const envFailed = new Set<string>();
  substituteEnv(doc, env, (node, path, message) => {
    envFailed.add(path);
    at(node.range?.[0], path, message);
  });

  const raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const result = configSchema.safeParse(raw);
  if (!result.success || problems.length > 0) {
    for (const issue of result.error?.issues ?? []) {
      const path = issue.path as (string | number)[];
      if (envFailed.has(formatPath(path))) continue;
      const { node, missing } = nearestNode(doc, path);
      const message = missing && issue.code === 'invalid_type' && /undefined/.test(issue.message) ? 'is required' : issue.message;
      const keyMsg = issue.code === 'unrecognized_keys' ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling)` : message;
      if (issue.code === 'unrecognized_keys') {
        // point at each unknown key itself
        for (const k of issue.keys) {
          const keyNode = findKeyNode(doc, path, k);
          at(keyNode?.range?.[0] ?? node?.range?.[0], formatPath([...path, k]), 'unknown key (check the spelling; see docs/configuration.md)');
        }
        continue;
      }
      at(node?.range?.[0], formatPath(path), keyMsg);
    }
    problems.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new ConfigError(problems);
  }
  return deepFreeze(result.data!);
}

function substituteEnv(doc: Document, env: NodeJS.ProcessEnv, fail: (node: Node, path: string, message: string) => void): void {
  visit(doc, {
    Scalar(_key, node, path) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const keyPath = path.filter(isPair).map((p) => (isScalar(p.key) ? String(p.key.value) : '?')).join('.');
      node.value = node.value.replace(ENV_REF, (match, name: string | undefined, fallback: string | undefined) => {
        if (match === '$${') return '${';
        const value = env[name!];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        fail(node, keyPath, `environment variable ${name} is not set`);
        return '';
      });
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

function findKeyNode(doc: Document, path: (string | number)[], key: string): Node | undefined {
  const parent = path.length === 0 ? doc.contents : doc.getIn(path, true);
  if (!isMap(parent)) return undefined;
  for (const pair of parent.items) {
    if (isScalar(pair.key) && String(pair.key.value) === key) return pair.key;
  }
  return undefined;
}

function formatPath(path: (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
