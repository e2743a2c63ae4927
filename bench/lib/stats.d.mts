// Types of bench/lib/stats.mjs for the TypeScript tests.
export interface LoopTimes { loadgen: number; target: number }
export function disturbance(
  run: { calBefore: LoopTimes; calAfter: LoopTimes; quietest: LoopTimes; otherLoadPct: number },
  limits: { disturbPct: number; disturbCorePct: number },
): { calMovedPct: number; calSlowPct: number; reasons: string[] };
export function usedRuns<R extends { disturbed: boolean }>(runs: R[]): { clean: R[]; used: R[]; disturbedOnly: boolean };
export function ratio<M extends { disturbedOnly: boolean }>(a: M | null | undefined, b: M | null | undefined, key: keyof M): number;
export function floorOf<S extends { target: { floor?: boolean }; median?: { disturbedOnly: boolean; cpuUsPerReq: number } | null }>(states: S[]): S | null;
export function settled(windows: number[], pct: number): { settled: boolean; figure: number };
