// Module: PyTorch's nn.Module in small. A module declares parameters and children at construction;
// `build()` on the root lays every parameter of the tree out in one ParameterArena (so AdamW, EMA,
// zero-grad and clipping are single dispatches) and hands each module views into it.
import { ParameterArena, type ParameterSpec } from '../arena.js';
import { isDecayed } from '../optim/adamw.js';
import { Rng } from '../rng.js';
import { fmt, numel, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';

/** Host-side initial values drawn from the build's generator, or a constant. */
export type ParamInit = number | ((shape: Shape, rng: Rng) => ArrayLike<number>);

export interface ParamOptions {
  /** Overrides the rule of docs/algorithm.md §7.1 (decay for tensors of rank >= 2 not named `.bias`). */
  decay?: boolean;
  /** False for a frozen parameter (not trained, e.g. weight_g with norm_last_layer). */
  requiresGrad?: boolean;
}

interface ParamDecl extends ParamOptions {
  shape: Shape;
  init: ParamInit;
}

export interface BuildOptions {
  /** Seed of the initialisation (parameters are drawn in declaration order). Default 0. */
  seed?: number;
  /** Lay parameters out like this module's arena (a teacher built like its student). */
  like?: Module;
  /** False for a network trained only by EMA (no gradients). Default true. */
  requiresGrad?: boolean;
  label?: string;
}

/** What `loadStateDict` found wrong; thrown as one error listing every key. */
export class StateDictError extends Error {
  constructor(
    readonly missing: string[],
    readonly unexpected: string[],
    readonly misshaped: string[],
  ) {
    const parts = [
      missing.length ? `missing keys (${missing.length}): ${missing.join(', ')}` : '',
      unexpected.length ? `unexpected keys (${unexpected.length}): ${unexpected.join(', ')}` : '',
      misshaped.length ? `shape mismatches (${misshaped.length}): ${misshaped.join('; ')}` : '',
    ].filter(Boolean);
    super(`loadStateDict: ${parts.join('\n  ')}`);
  }
}

/** A named tensor of host values, as read from or written to a checkpoint. */
export interface HostTensor {
  data: Float32Array;
  shape: readonly number[];
}

export abstract class Module {
  training = true;
  private readonly decls = new Map<string, ParamDecl>();
  private readonly children = new Map<string, Module>();
  private readonly views = new Map<string, Tensor<'f32'>>();
  private ownArena: ParameterArena | undefined;

  /** Declare a parameter (PyTorch: register_parameter). */
  protected registerParameter(name: string, shape: Shape, init: ParamInit, opts: ParamOptions = {}): void {
    this.decls.set(name, { shape, init, ...opts });
  }

  /** Register a child module under `name` (PyTorch: add_module); returns it. */
  protected registerModule<M extends Module>(name: string | number, m: M): M {
    this.children.set(String(name), m);
    return m;
  }

  /** The parameter `name` of this module (after `build()`). */
  param(name: string): Tensor<'f32'> {
    const v = this.views.get(name);
    if (!v) throw new Error(`${this.constructor.name}: parameter '${name}' ${this.decls.has(name) ? 'is not built yet: call build() on the root module' : 'does not exist'}`);
    return v;
  }

  /** The arena of the root this module was built from. */
  get arena(): ParameterArena {
    if (!this.ownArena) throw new Error(`${this.constructor.name}: not built yet: call build() on the root module`);
    return this.ownArena;
  }

  /** Every declared parameter of the tree, with its full dotted name, in declaration order. */
  namedDeclarations(prefix = ''): [string, ParamDecl, Module, string][] {
    const out: [string, ParamDecl, Module, string][] = [];
    for (const [n, d] of this.decls) out.push([prefix + n, d, this, n]);
    for (const [c, m] of this.children) out.push(...m.namedDeclarations(`${prefix}${c}.`));
    return out;
  }

  /** Child modules with their dotted names (PyTorch's named_modules, without the root). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [c, m] of this.children) out.push([prefix + c, m], ...m.namedModules(`${prefix}${c}.`));
    return out;
  }

  /**
   * A table of the tree's modules down to `depth` levels (torchinfo's summary, without activations): each
   * module's dotted name and class with the parameters below it, then the totals (all, trainable, decayed)
   * and their size as float32. Works before build(), from the declarations, so a model's size can be read
   * before any memory is taken.
   */
  summary(depth = 2): string {
    const count = (m: Module): { all: number; trainable: number } =>
      m
        .namedDeclarations()
        .reduce((a, [, d]) => ({ all: a.all + numel(d.shape), trainable: a.trainable + (d.requiresGrad === false ? 0 : numel(d.shape)) }), { all: 0, trainable: 0 });
    const rows: [string, string][] = [[`${this.constructor.name}`, count(this).all.toLocaleString('en-US')]];
    const walk = (m: Module, prefix: string, level: number): void => {
      if (level > depth) return;
      for (const [c, child] of m.children) {
        rows.push([`${'  '.repeat(level)}${prefix}${c} (${child.constructor.name})`, count(child).all.toLocaleString('en-US')]);
        walk(child, `${prefix}${c}.`, level + 1);
      }
    };
    const own = [...this.decls.values()].reduce((n, d) => n + numel(d.shape), 0);
    if (own > 0) rows.push([`  (its own: ${[...this.decls.keys()].join(', ')})`, own.toLocaleString('en-US')]);
    walk(this, '', 1);
    const total = count(this);
    const decayed = this.namedDeclarations().reduce((n, [name, d]) => n + ((d.decay ?? isDecayed(name, d.shape)) ? numel(d.shape) : 0), 0);
    const w = Math.max(...rows.map(([a]) => a.length)) + 2;
    const lines = rows.map(([a, b]) => a.padEnd(w) + b.padStart(12));
    const mb = ((total.all * 4) / 1e6).toFixed(2);
    lines.push(
      `${total.all.toLocaleString('en-US')} parameters (${mb} MB as float32), ${total.trainable.toLocaleString('en-US')} trainable, ${decayed.toLocaleString('en-US')} with weight decay`,
    );
    return lines.join('\n');
  }

  /** Allocate the arena for the whole tree and initialise every parameter. Call once, on the root. */
  build(opts: BuildOptions = {}): this {
    if (this.ownArena) throw new Error(`${this.constructor.name}: build() was already called`);
    const rng = new Rng(opts.seed ?? 0);
    const decls = this.namedDeclarations();
    const specs: ParameterSpec[] = decls.map(([name, d]) => ({
      name,
      shape: d.shape,
      init: typeof d.init === 'number' ? d.init : d.init(d.shape, rng),
      decay: d.decay ?? isDecayed(name, d.shape),
      requiresGrad: opts.requiresGrad === false ? false : d.requiresGrad,
    }));
    const arena = new ParameterArena(specs, { like: opts.like?.arena, requiresGrad: opts.requiresGrad ?? true, label: opts.label ?? this.constructor.name });
    for (const [full, , owner, local] of decls) {
      owner.views.set(local, arena.get(full));
      owner.ownArena = arena;
    }
    this.ownArena = arena;
    for (const [, m] of this.namedModules()) m.ownArena = arena;
    return this;
  }

  namedParameters(): [string, Tensor<'f32'>][] {
    return this.arena.namedParameters();
  }

  parameters(): Tensor<'f32'>[] {
    return this.arena.parameters();
  }

  /** Parameter values by full name (one readback). */
  async stateDict(): Promise<Map<string, HostTensor>> {
    const values = await this.arena.stateDict();
    return new Map(this.arena.entries.map((e) => [e.name, { data: values.get(e.name)!, shape: e.shape }]));
  }

  /**
   * Load values by full name. `strict` (default) requires exactly this module's keys; every missing,
   * unexpected and mis-shaped key is listed in one error. Non-strict loads the matching keys and
   * returns what it skipped.
   */
  loadStateDict(values: ReadonlyMap<string, HostTensor>, strict = true): { missing: string[]; unexpected: string[] } {
    const entries = new Map(this.arena.entries.map((e) => [e.name, e]));
    const missing = [...entries.keys()].filter((k) => !values.has(k));
    const unexpected = [...values.keys()].filter((k) => !entries.has(k));
    const misshaped: string[] = [];
    for (const [k, v] of values) {
      const e = entries.get(k);
      if (!e) continue;
      const sameNumel = v.data.length === e.size && numel(v.shape) === e.size;
      const sameRank = v.shape.length === e.shape.length && v.shape.every((d, i) => d === e.shape[i]);
      if (!sameNumel || !sameRank) misshaped.push(`${k}: checkpoint ${fmt(v.shape)} vs model ${fmt(e.shape)}`);
    }
    if (misshaped.length || (strict && (missing.length || unexpected.length))) throw new StateDictError(strict ? missing : [], strict ? unexpected : [], misshaped);
    this.arena.loadStateDict(new Map([...values].filter(([k]) => entries.has(k)).map(([k, v]) => [k, v.data])), false);
    return { missing, unexpected };
  }

  /**
   * Seed every stochastic module of the tree (dropout, drop path) from `seed`, e.g. the step number:
   * the random draws of a step then depend only on it, so a resumed run repeats them exactly.
   */
  reseed(seed: number): this {
    const mods: Module[] = [this, ...this.namedModules().map(([, m]) => m)];
    mods.forEach((m, i) => m.onReseed((Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0));
    return this;
  }

  /** Stochastic modules override this to restart their random stream. */
  protected onReseed(_seed: number): void {}

  /** Training mode on or off for the whole tree (drop path, dropout). */
  train(on = true): this {
    this.training = on;
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Free the arena (call on the root). */
  dispose(): void {
    this.ownArena?.dispose();
  }
}
