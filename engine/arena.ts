// Parameter arena: all parameters of a module in one flat f32 buffer, each parameter a Tensor view
// into it, with gradients and optimiser state in buffers of the same layout. That is what lets EMA,
// AdamW, zero-grad and clipping each be one dispatch over the whole model.
import { emaKernel } from '../kernels/ema.js';
import { elementwiseUniforms, fillKernel } from '../kernels/elementwise.js';
import { CHUNK_WG, CHUNK_WORDS } from '../kernels/grad-norm.js';
import { grid1d } from '../kernels/kernel.js';
import type { PooledBuffer } from './buffer-pool.js';
import { kernelUniforms } from './ops/launch.js';
import { rt, type Binding } from './runtime.js';
import { keep, tidy } from './scope.js';
import { checkShape, fmt, numel, sameShape, type Shape } from './shape.js';
import { fromArray, Storage, Tensor } from './tensor.js';

/** Every parameter starts on this boundary (WebGPU's largest minStorageBufferOffsetAlignment), so a view binds on its own. */
export const ARENA_ALIGN_BYTES = 256;
const ALIGN = ARENA_ALIGN_BYTES / 4;

/** A constant, host data (row-major), or a function drawing the tensor on the GPU (e.g. `(s) => randn(s, seed, 0, 0.02)`). */
export type Initializer = number | ArrayLike<number> | ((shape: Shape) => Tensor<'f32'>);

export interface ParameterSpec {
  /** PyTorch state_dict name, e.g. `blocks.0.attn.qkv.weight`. */
  name: string;
  shape: Shape;
  /** Initial value; zeros when absent. */
  init?: Initializer;
  /** Member of the weight-decay group (docs/algorithm.md §7.1). */
  decay: boolean;
  /** Default: the arena's `requiresGrad` option (true). */
  requiresGrad?: boolean;
}

/** Where a parameter lives: `offset` and `size` in elements from the start of every buffer of the arena. */
export interface ArenaEntry {
  readonly name: string;
  readonly shape: Shape;
  readonly offset: number;
  readonly size: number;
  readonly decay: boolean;
  readonly requiresGrad: boolean;
}

export interface ArenaOptions {
  /**
   * Put every parameter at the offset of the same-named parameter of this arena. A teacher built
   * `{ like: student }` shares the student's layout, with holes where the student has parameters the
   * teacher lacks (`masked_embed`), so copy and EMA are single elementwise dispatches.
   */
  like?: ParameterArena;
  /** Default for specs without `requiresGrad` (a teacher passes false). */
  requiresGrad?: boolean;
  label?: string;
}

/** Host values by parameter name (a Map or a plain object). */
export type NamedArrays = ReadonlyMap<string, ArrayLike<number>> | Readonly<Record<string, ArrayLike<number>>>;

function entriesOf(values: NamedArrays): [string, ArrayLike<number>][] {
  return values instanceof Map ? [...values.entries()] : Object.entries(values as Record<string, ArrayLike<number>>);
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** A sub-range of a pooled buffer, in elements, as a kernel binding. */
function rangeBinding(p: PooledBuffer, offset: number, size: number): Binding {
  return { buffer: p.buffer, offset: offset * 4, size: Math.max(size, 1) * 4, pooled: p };
}

/** dst = a·dst + b·src over `n` elements (copy: a = 0, b = 1; accumulate: a = b = 1). */
function blend(dst: Binding, src: Binding, n: number, a: number, b: number, label: string): void {
  // Four elements per thread where the size allows (every whole arena); views start 256-byte aligned.
  const width = n % 4 === 0 ? 4 : 1;
  const k = emaKernel(width);
  rt().dispatch(k, kernelUniforms(k, { n: n / width, a, b }, label), [dst, src], grid1d(n / width), label);
}

/** One flat f32 buffer laid out like its arena (parameters, gradients, or one optimiser state). */
export class ArenaBuffer {
  /** The whole buffer, padding included, as a 1-D tensor (for arena-wide kernels). */
  readonly flat: Tensor<'f32'>;
  private readonly views: (Tensor<'f32'> | undefined)[];
  private disposed = false;

  constructor(
    readonly arena: ParameterArena,
    readonly label: string,
    private readonly pooled: PooledBuffer,
  ) {
    this.flat = this.pinned(0, [arena.numel]);
    this.views = new Array(arena.entries.length);
  }

  /** The view of parameter `i` (or by name) into this buffer. */
  view(which: number | string): Tensor<'f32'> {
    this.assertAlive();
    const i = typeof which === 'number' ? which : this.arena.indexOf(which);
    let v = this.views[i];
    if (!v) {
      const e = this.arena.entries[i];
      v = this.views[i] = this.pinned(e.offset, e.shape);
      v.name = `${e.name} (${this.label})`;
    }
    return v;
  }

  /** Binding of parameter `i`'s elements. */
  binding(i: number): Binding {
    const e = this.arena.entries[i];
    return rangeBinding(this.pooled, e.offset, e.size);
  }

  /** Every parameter's values, by name, in one readback. */
  async read(): Promise<Map<string, Float32Array>> {
    this.assertAlive();
    const bytes = await rt().read(rangeBinding(this.pooled, 0, this.arena.numel), `read ${this.arena.label} ${this.label}`);
    const all = new Float32Array(bytes);
    return new Map(this.arena.entries.map((e) => [e.name, all.slice(e.offset, e.offset + e.size)]));
  }

  /** Overwrite the named parameters' values (others keep theirs); ordered with the pending work. */
  write(values: NamedArrays): void {
    this.assertAlive();
    const list = entriesOf(values).map(([name, data]) => {
      const i = this.arena.indexOf(name);
      const e = this.arena.entries[i];
      if (data.length !== e.size) {
        throw new Error(`${this.arena.label}: ${this.label} value for '${name}' has ${data.length} elements, the parameter ${fmt(e.shape)} has ${e.size}`);
      }
      return { i, e, data };
    });
    if (list.length === 0) return;
    // One upload spanning just the written parameters, then a copy into each view.
    const lo = Math.min(...list.map(({ e }) => e.offset));
    const image = new Float32Array(Math.max(...list.map(({ e }) => e.offset + e.size)) - lo);
    for (const { e, data } of list) image.set(data, e.offset - lo);
    const staged = rt().upload(image, `write ${this.arena.label} ${this.label}`);
    for (const { i, e } of list) blend(this.binding(i), rangeBinding(staged, e.offset - lo, e.size), e.size, 0, 1, `write ${e.name}`);
    rt().release(staged);
  }

  /** Every element (padding included) set to `value`: one dispatch. */
  fill(value: number): void {
    this.assertAlive();
    const n = this.arena.numel;
    const k = fillKernel('f32');
    const label = `fill ${this.arena.label} ${this.label}`;
    rt().dispatch(k, kernelUniforms(k, elementwiseUniforms(n, value), label), [this.flat.binding], grid1d(n), label);
  }

  /** this = a·this + b·src over the whole buffer, one dispatch; `src` must share the layout. */
  blendFrom(src: ArenaBuffer, a: number, b: number, op: string): void {
    this.assertAlive();
    src.assertAlive();
    assertSharedLayout(op, this.arena, src.arena);
    blend(this.flat.binding, src.flat.binding, this.arena.numel, a, b, `${op}(${this.arena.label} <- ${src.arena.label})`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.views) v?.dispose();
    this.flat.dispose();
    // Views hold a pinned reference each, so the buffer goes back to the pool exactly once, here.
    rt().release(this.pooled);
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error(`${this.arena.label}: the ${this.label} buffer was disposed`);
  }

  // A view whose storage keeps one extra reference: disposing views never frees the shared buffer.
  private pinned(offset: number, shape: Shape): Tensor<'f32'> {
    const s = new Storage(this.pooled.buffer, offset * 4, numel(shape) * 4, this.pooled).retain();
    return new Tensor(shape, 'f32', s, false);
  }
}

const owners = new WeakMap<Tensor, { arena: ParameterArena; index: number }>();
const compatible = new WeakMap<ParameterArena, WeakSet<ParameterArena>>();

/**
 * Throw unless every parameter of `target` sits at the same offset with the same shape in `source`
 * (parameters only `source` has are allowed): the condition for one-dispatch copies and EMA.
 */
export function assertSharedLayout(op: string, target: ParameterArena, source: ParameterArena): void {
  if (target === source || compatible.get(target)?.has(source)) return;
  if (target.numel > source.numel) {
    throw new Error(`${op}: arena ${target.label} spans ${target.numel} elements, more than ${source.label} (${source.numel}); build it with { like: ${source.label} }`);
  }
  for (const e of target.entries) {
    const s = source.entryOrUndefined(e.name);
    if (!s) throw new Error(`${op}: parameter '${e.name}' of ${target.label} is missing from ${source.label}`);
    if (!sameShape(s.shape, e.shape) || s.offset !== e.offset) {
      throw new Error(
        `${op}: parameter '${e.name}' is ${fmt(e.shape)} at element ${e.offset} in ${target.label} but ${fmt(s.shape)} at ${s.offset} in ${source.label}; build ${target.label} with { like: ${source.label} }`,
      );
    }
  }
  let set = compatible.get(target);
  if (!set) compatible.set(target, (set = new WeakSet()));
  set.add(source);
}

/**
 * The gradient slot of an arena parameter that has had no gradient since the last zeroGrad() (so it
 * holds zeros), as a tensor a backward rule may write the gradient into (see BackwardFn); undefined
 * for any other tensor. The caller disposes it (the slot itself stays).
 */
export function emptyGradSlot(param: Tensor): Tensor<'f32'> | undefined {
  const owner = owners.get(param);
  if (!owner || !param.requiresGrad || owner.arena.hasGrad[owner.index]) return undefined;
  // A scope-tracked tensor (shareRef's are not), so the backward pass's scope frees it.
  const view = owner.arena.grads.view(owner.index);
  return new Tensor(view.shape, 'f32', view.storage.retain());
}

/**
 * Autograd's hook for leaf gradients: a parameter of an arena accumulates in place into its view of
 * the arena's gradient buffer (one dispatch) and is marked as having a gradient. Returns false for
 * any other tensor.
 */
export function accumulateArenaGrad(param: Tensor, g: Tensor<'f32'>): boolean {
  const owner = owners.get(param);
  if (!owner) return false;
  owner.arena.accumulateGrad(owner.index, g);
  return true;
}

/** The parameters of a module in one buffer; gradients and optimiser states in buffers of the same layout. */
export class ParameterArena {
  readonly entries: readonly ArenaEntry[];
  /** Elements spanned by every buffer of the arena, padding included. */
  readonly numel: number;
  readonly label: string;
  readonly data: ArenaBuffer;
  /** Per parameter: 1 if it received a gradient since the last zeroGrad()/setGrads(). */
  readonly hasGrad: Uint8Array;
  /** Chunk table of the segmented kernels (see kernels/grad-norm.ts), and its length. */
  readonly chunkTable: Tensor<'u32'>;
  readonly numChunks: number;
  private readonly params: Tensor<'f32'>[];
  private readonly byName = new Map<string, number>();
  private gradBuffer: ArenaBuffer | undefined;
  private readonly states = new Map<string, ArenaBuffer>();
  private disposed = false;

  constructor(specs: readonly ParameterSpec[], opts: ArenaOptions = {}) {
    this.label = opts.label ?? 'arena';
    const like = opts.like;
    let cursor = 0;
    const entries: ArenaEntry[] = specs.map((s, i) => {
      checkShape(`ParameterArena ${s.name}`, s.shape);
      const size = numel(s.shape);
      if (size === 0) throw new Error(`ParameterArena: parameter '${s.name}' ${fmt(s.shape)} has no elements`);
      if (this.byName.has(s.name)) throw new Error(`ParameterArena: parameter name '${s.name}' is used twice`);
      this.byName.set(s.name, i);
      let offset = alignUp(cursor, ALIGN);
      if (like) {
        const l = like.entryOrUndefined(s.name);
        if (!l) throw new Error(`ParameterArena ${this.label}: parameter '${s.name}' has no counterpart in ${like.label} to take its place from`);
        if (!sameShape(l.shape, s.shape)) throw new Error(`ParameterArena ${this.label}: '${s.name}' is ${fmt(s.shape)} here but ${fmt(l.shape)} in ${like.label}`);
        offset = l.offset;
      }
      cursor = offset + size;
      return Object.freeze({ name: s.name, shape: Object.freeze([...s.shape]), offset, size, decay: s.decay, requiresGrad: s.requiresGrad ?? opts.requiresGrad ?? true });
    });
    this.entries = Object.freeze(entries);
    this.numel = like ? like.numel : Math.max(alignUp(cursor, ALIGN), ALIGN);
    this.hasGrad = new Uint8Array(entries.length);
    const maxBinding = rt().device.limits.maxStorageBufferBindingSize;
    if (this.numel * 4 > maxBinding) {
      throw new Error(
        `ParameterArena ${this.label}: ${this.numel * 4} bytes exceed this adapter's maxStorageBufferBindingSize (${maxBinding}); arena-wide kernels bind the whole buffer`,
      );
    }

    const image = new Float32Array(this.numel);
    specs.forEach((s, i) => {
      const { offset, size } = entries[i];
      if (typeof s.init === 'number') image.fill(s.init, offset, offset + size);
      else if (s.init && typeof s.init !== 'function') {
        if (s.init.length !== size) throw new Error(`ParameterArena: initial data of '${s.name}' has ${s.init.length} elements, ${fmt(s.shape)} needs ${size}`);
        image.set(s.init, offset);
      }
    });
    this.data = new ArenaBuffer(this, 'param', rt().upload(image, `${this.label} parameters`));
    specs.forEach((s, i) => {
      if (typeof s.init !== 'function') return;
      const init = s.init;
      const t = tidy(() => init(s.shape));
      if (!sameShape(t.shape, s.shape) || t.dtype !== 'f32') {
        throw new Error(`ParameterArena: initializer of '${s.name}' ${fmt(s.shape)} returned ${t.describe()}`);
      }
      blend(this.data.binding(i), t.binding, entries[i].size, 0, 1, `init ${s.name}`);
      t.dispose();
    });

    this.params = entries.map((e, i) => {
      const p = this.data.view(i);
      p.name = e.name;
      p.requiresGrad = e.requiresGrad;
      owners.set(p, { arena: this, index: i });
      return p;
    });

    // Chunks of a few thousand elements, fewer than ~1024 + one per parameter however large the model.
    const total = entries.reduce((a, e) => a + e.size, 0);
    const chunk = Math.max(4096, alignUp(Math.ceil(total / 1024), CHUNK_WG));
    const table: number[] = [];
    entries.forEach((e, i) => {
      const first = table.length / CHUNK_WORDS;
      const n = Math.ceil(e.size / chunk);
      for (let k = 0; k < n; k++) {
        const start = e.offset + k * chunk;
        table.push(i, start, Math.min(start + chunk, e.offset + e.size), first, first + n);
      }
    });
    this.numChunks = table.length / CHUNK_WORDS;
    this.chunkTable = keep(fromArray(table, [table.length], 'u32'));
  }

  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** The parameter tensor (a view into the arena) called `name`. */
  get(name: string): Tensor<'f32'> {
    return this.params[this.indexOf(name)];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  parameters(): Tensor<'f32'>[] {
    return [...this.params];
  }

  namedParameters(): [string, Tensor<'f32'>][] {
    return this.entries.map((e, i) => [e.name, this.params[i]]);
  }

  indexOf(name: string): number {
    const i = this.byName.get(name);
    if (i === undefined) throw new Error(`${this.label}: no parameter named '${name}' (has ${this.names.join(', ')})`);
    return i;
  }

  entry(name: string): ArenaEntry {
    return this.entries[this.indexOf(name)];
  }

  entryOrUndefined(name: string): ArenaEntry | undefined {
    const i = this.byName.get(name);
    return i === undefined ? undefined : this.entries[i];
  }

  /** The gradient buffer (allocated zeroed on first use); parameter `.grad`s are views into it. */
  get grads(): ArenaBuffer {
    this.assertAlive();
    if (!this.gradBuffer) this.gradBuffer = this.zeroBuffer('grad');
    return this.gradBuffer;
  }

  /** A named optimiser-state buffer (`exp_avg`, `exp_avg_sq`), allocated zeroed on first use. */
  state(key: string): ArenaBuffer {
    this.assertAlive();
    let b = this.states.get(key);
    if (!b) this.states.set(key, (b = this.zeroBuffer(key)));
    return b;
  }

  hasState(key: string): boolean {
    return this.states.has(key);
  }

  /** Zero every gradient (one dispatch) and clear the has-gradient flags. */
  zeroGrad(): void {
    this.grads.fill(0);
    this.hasGrad.fill(0);
  }

  /**
   * Set the gradients from host values: the named parameters get these and count as having a
   * gradient; every other gradient is zeroed and counts as absent.
   */
  setGrads(values: NamedArrays): void {
    this.zeroGrad();
    this.grads.write(values);
    for (const [name] of entriesOf(values)) this.markGrad(this.indexOf(name));
  }

  /** grad_i += g in place (called by backward through accumulateArenaGrad). */
  accumulateGrad(i: number, g: Tensor<'f32'>): void {
    const e = this.entries[i];
    if (!sameShape(g.shape, e.shape)) throw new Error(`${this.label}: gradient ${fmt(g.shape)} for '${e.name}' ${fmt(e.shape)}`);
    // Written in place by the backward rule (emptyGradSlot): nothing to add.
    if (g.storage === this.grads.view(i).storage) {
      if (this.hasGrad[i]) throw new Error(`internal: a backward rule wrote into the gradient slot of '${e.name}', which already held a gradient`);
      this.markGrad(i);
      return;
    }
    blend(this.grads.binding(i), g.binding, e.size, 1, 1, `accumulate grad ${e.name}`);
    this.markGrad(i);
  }

  /** Copy every parameter from `source` (same layout, e.g. the student a teacher was built `like`): one dispatch. */
  copyFrom(source: ParameterArena): void {
    this.data.blendFrom(source.data, 0, 1, 'copyFrom');
  }

  /** Every parameter's values by name (one readback), for checkpoints. */
  stateDict(): Promise<Map<string, Float32Array>> {
    return this.data.read();
  }

  /** Load parameter values by name; `strict` (default) requires exactly this arena's names. */
  loadStateDict(values: NamedArrays, strict = true): void {
    if (strict) {
      const given = new Set(entriesOf(values).map(([n]) => n));
      const missing = this.names.filter((n) => !given.has(n));
      const unexpected = [...given].filter((n) => !this.byName.has(n));
      if (missing.length || unexpected.length) {
        throw new Error(`${this.label}.loadStateDict: missing keys [${missing.join(', ')}], unexpected keys [${unexpected.join(', ')}]`);
      }
    } else values = new Map(entriesOf(values).filter(([n]) => this.byName.has(n)));
    this.data.write(values);
  }

  /** Free every buffer of the arena; its parameter tensors must not be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.params) owners.delete(p);
    this.data.dispose();
    this.gradBuffer?.dispose();
    for (const s of this.states.values()) s.dispose();
    this.chunkTable.dispose();
  }

  private markGrad(i: number): void {
    this.hasGrad[i] = 1;
    const p = this.params[i];
    p.grad = this.grads.view(i);
  }

  private zeroBuffer(key: string): ArenaBuffer {
    const b = new ArenaBuffer(this, key, rt().alloc(this.numel * 4, `${this.label} ${key}`));
    b.fill(0);
    return b;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error(`${this.label}: the arena was disposed`);
  }
}
