/**
 * Named phases of the request pipeline. Modules register stages into a phase; the pipeline is
 * built once from the registry, in phase order (registration order within a phase), for both
 * plain requests and upgrades (WebSocket). A stage that only applies to one kind says so.
 */
import type { StageWithNext } from './compose.js';

/** Phases in the order a request passes them. */
export const PHASES = ['route', 'auth', 'limit', 'balance', 'forward'] as const;
export type Phase = (typeof PHASES)[number];

/** A plain HTTP request, or an Upgrade (WebSocket) handshake. */
export type RequestKind = 'request' | 'upgrade';

/** One stage for both kinds, or a stage per kind (e.g. `forward`: the HTTP proxy and the tunnel). */
export type StageEntry = StageWithNext | { readonly request?: StageWithNext; readonly upgrade?: StageWithNext };

/** Where stages are registered by phase. */
export interface StageRegistrar {
  add(phase: Phase, stage: StageEntry): void;
}

export class StageRegistry implements StageRegistrar {
  readonly #byPhase = new Map<Phase, StageEntry[]>(PHASES.map((p) => [p, []]));
  #sealed = false;

  add(phase: Phase, stage: StageEntry): void {
    const list = this.#byPhase.get(phase);
    if (list === undefined) throw new Error(`unknown pipeline phase "${String(phase)}" (phases: ${PHASES.join(', ')})`);
    if (this.#sealed) throw new Error(`the pipeline is already built: stages are registered while modules are built (phase "${phase}")`);
    list.push(stage);
  }

  /** No more stages: the pipeline is about to be built. */
  seal(): void {
    this.#sealed = true;
  }

  /** The stages of one kind, in phase order. */
  stages(kind: RequestKind): StageWithNext[] {
    const out: StageWithNext[] = [];
    for (const phase of PHASES) {
      for (const entry of this.#byPhase.get(phase)!) {
        const stage = typeof entry === 'function' ? entry : entry[kind];
        if (stage !== undefined) out.push(stage);
      }
    }
    return out;
  }

  /** Stage names per phase (for logs and tests). */
  describe(kind: RequestKind): Record<Phase, string[]> {
    const out = {} as Record<Phase, string[]>;
    for (const phase of PHASES) {
      out[phase] = [];
      for (const entry of this.#byPhase.get(phase)!) {
        const stage = typeof entry === 'function' ? entry : entry[kind];
        if (stage !== undefined) out[phase].push(stage.name);
      }
    }
    return out;
  }
}
