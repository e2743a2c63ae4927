/** Problems found in a config file, each located at `file:line:col`. */

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
