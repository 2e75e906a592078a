// AdamW with torch.optim.AdamW's semantics (docs/algorithm.md §7.2) over a parameter arena: per-parameter step counters,
// bias corrections from each parameter's own step, decoupled decay for the decay group only, and
// parameters without a gradient (or frozen) skipped entirely. One dispatch per step.
import { ADAMW_TABLE_WORDS, adamwKernel } from '../../kernels/adamw.js';
import { CHUNK_WG } from '../../kernels/grad-norm.js';
import { grid1d } from '../../kernels/kernel.js';
import type { NamedArrays, ParameterArena } from '../arena.js';
import { launch } from '../ops/launch.js';
import type { Shape } from '../shape.js';
import { fromArray } from '../tensor.js';

/** docs/algorithm.md §7.1: weight decay for every tensor with ≥ 2 dimensions whose name does not end in `.bias`. */
export function isDecayed(name: string, shape: Shape): boolean {
  return !name.endsWith('.bias') && shape.length >= 2;
}

export interface AdamWOptions {
  /** Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Default 1e-8. */
  eps?: number;
}

/**
 * A parameter group, as torch's `param_groups`: some parameters, by name or predicate, with a learning
 * rate and/or weight decay of their own (e.g. a smaller lr for a pretrained backbone than for a new head).
 */
export interface AdamWParamGroup {
  params: readonly string[] | ((name: string) => boolean);
  /** This group's learning rate (default: the step's `lr`). */
  lr?: number;
  /**
   * This group's weight decay, applied to every parameter of the group as torch does (default: the
   * step's `weightDecay`, on the arena's decay group only).
   */
  weightDecay?: number;
}

export interface AdamWStepOptions {
  lr: number;
  /** Applied to the arena's decay-group parameters only. */
  weightDecay: number;
  /** Parameter groups with their own lr / weight decay; a parameter takes the first group that has it, else the step's values. */
  groups?: readonly AdamWParamGroup[];
  /** Parameters whose gradient is dropped this step (docs/algorithm.md §7.6), by name or predicate. */
  frozen?: readonly string[] | ((name: string) => boolean);
  /** Which parameters have a gradient (default: the arena's flags from backward / setGrads). */
  hasGrad?: ArrayLike<number | boolean>;
}

/** Optimiser state by parameter name, as torch keeps it per parameter. */
export interface AdamWState {
  step: Map<string, number>;
  exp_avg: Map<string, Float32Array>;
  exp_avg_sq: Map<string, Float32Array>;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** Per-parameter step counters, in the arena's order (the host knows them exactly: the flags are host inputs). */
  readonly steps: Uint32Array;

  constructor(
    readonly arena: ParameterArena,
    opts: AdamWOptions = {},
  ) {
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    // torch.optim.AdamW's own checks: a bad hyper-parameter is an error here, not NaN weights later.
    for (const [k, b] of [
      ['betas[0]', this.beta1],
      ['betas[1]', this.beta2],
    ] as const)
      if (!(b >= 0 && b < 1)) throw new Error(`AdamW: ${k} must be in [0, 1), got ${b}`);
    if (!(this.eps >= 0)) throw new Error(`AdamW: eps must be a non-negative number, got ${this.eps}`);
    this.steps = new Uint32Array(arena.entries.length);
  }

  /** Which parameters this step updates: a gradient, trainable, not frozen. */
  activeFlags(o: Pick<AdamWStepOptions, 'frozen' | 'hasGrad'> = {}): boolean[] {
    const has = o.hasGrad ?? this.arena.hasGrad;
    if (has.length !== this.arena.entries.length) {
      throw new Error(`AdamW.step: hasGrad has ${has.length} flags for ${this.arena.entries.length} parameters`);
    }
    const frozen = o.frozen;
    const isFrozen = typeof frozen === 'function' ? frozen : (n: string) => frozen?.includes(n) ?? false;
    return this.arena.entries.map((e, i) => Boolean(has[i]) && e.requiresGrad && !isFrozen(e.name));
  }

  /** One AdamW update of every active parameter (records one dispatch). */
  step(o: AdamWStepOptions): void {
    // Checked at run time too (JavaScript callers, options built at run time): an undefined weightDecay made every weight NaN.
    if (typeof o.lr !== 'number' || !Number.isFinite(o.lr) || o.lr < 0) throw new Error(`AdamW.step: lr must be a finite non-negative number, got ${String(o.lr)}`);
    if (typeof o.weightDecay !== 'number' || !Number.isFinite(o.weightDecay) || o.weightDecay < 0)
      throw new Error(`AdamW.step: weightDecay must be a finite non-negative number, got ${String(o.weightDecay)} (pass weightDecay: 0 for none)`);
    const hyper = this.groupHyper(o);
    const active = this.activeFlags(o);
    const table = new Float32Array(active.length * ADAMW_TABLE_WORDS);
    this.arena.entries.forEach((_, i) => {
      if (!active[i]) return;
      const t = ++this.steps[i];
      const { lr, weightDecay } = hyper[i];
      // float64 here, rounded to f32 once, as torch computes these Python scalars.
      table.set([1 - lr * weightDecay, lr / (1 - this.beta1 ** t), Math.sqrt(1 - this.beta2 ** t), 1], i * ADAMW_TABLE_WORDS);
    });
    if (!active.some(Boolean)) return;
    const a = this.arena;
    const perParam = fromArray(table, [table.length]);
    const u = { chunks: a.numChunks, beta1: this.beta1, beta2: this.beta2, oneMinusBeta1: 1 - this.beta1, oneMinusBeta2: 1 - this.beta2, eps: this.eps };
    const label = `AdamW.step(${a.label}, ${a.entries.length} parameters)`;
    launch(adamwKernel(), u, [a.data.flat, a.state('exp_avg').flat, a.state('exp_avg_sq').flat], [a.grads.flat, a.chunkTable, perParam], grid1d(a.numChunks * CHUNK_WG), label);
    perParam.dispose();
  }

  /** Each parameter's lr and weight decay this step: its first group's, else the step's (decay group only). */
  private groupHyper(o: AdamWStepOptions): { lr: number; weightDecay: number }[] {
    const groups = o.groups ?? [];
    groups.forEach((g, k) => {
      for (const [key, v] of [
        ['lr', g.lr],
        ['weightDecay', g.weightDecay],
      ] as const)
        if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0))
          throw new Error(`AdamW.step: groups[${k}].${key} must be a finite non-negative number, got ${String(v)}`);
      if (typeof g.params !== 'function') {
        const unknown = g.params.filter((n) => !this.arena.entries.some((e) => e.name === n));
        if (unknown.length)
          throw new Error(`AdamW.step: groups[${k}] names ${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? ', ...' : ''}, not parameters of arena ${this.arena.label}`);
      }
    });
    return this.arena.entries.map((e) => {
      const g = groups.find((x) => (typeof x.params === 'function' ? x.params(e.name) : x.params.includes(e.name)));
      return { lr: g?.lr ?? o.lr, weightDecay: g?.weightDecay ?? (e.decay ? o.weightDecay : 0) };
    });
  }

  /** Step counters and moments by parameter name (moments zero where never stepped). */
  async stateDict(): Promise<AdamWState> {
    const step = new Map(this.arena.entries.map((e, i) => [e.name, this.steps[i]]));
    return { step, exp_avg: await this.arena.state('exp_avg').read(), exp_avg_sq: await this.arena.state('exp_avg_sq').read() };
  }

  /** Restore state saved by stateDict() (or PyTorch's, by name); names absent keep their state. */
  loadStateDict(s: { step: ReadonlyMap<string, number> | Readonly<Record<string, number>>; exp_avg: NamedArrays; exp_avg_sq: NamedArrays }): void {
    const steps = s.step instanceof Map ? [...s.step.entries()] : Object.entries(s.step as Record<string, number>);
    for (const [name, t] of steps) {
      if (!Number.isInteger(t) || t < 0) throw new Error(`AdamW.loadStateDict: step of '${name}' is ${t}, not a count`);
      this.steps[this.arena.indexOf(name)] = t;
    }
    this.arena.state('exp_avg').write(s.exp_avg);
    this.arena.state('exp_avg_sq').write(s.exp_avg_sq);
  }
}
