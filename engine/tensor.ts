// Tensor: a shape, a dtype and a view of GPU memory, plus what autograd needs.
import type { DType } from '../kernels/kernel.js';
import type { PooledBuffer } from './buffer-pool.js';
import { rt, type Binding } from './runtime.js';
import { fmt, numel, checkShape, type Shape } from './shape.js';
import { track } from './scope.js';
import { forgetTensor, leakTracking, noteTensor } from './leak-report.js';
import type { TapeEntry } from './autograd.js';

export type { DType } from '../kernels/kernel.js';
export type { Shape } from './shape.js';

export type TypedArrayOf<D extends DType> = D extends 'f32' ? Float32Array : D extends 'i32' ? Int32Array : Uint32Array;

/**
 * GPU memory shared by a tensor and its views (reshape, detach, saved copies for backward).
 * Reference-counted: the memory goes back to the pool when the last holder lets go.
 */
export class Storage {
  private refs = 1;

  constructor(
    readonly buffer: GPUBuffer,
    readonly byteOffset: number,
    readonly byteLength: number,
    readonly pooled: PooledBuffer | undefined,
  ) {}

  retain(): this {
    if (this.refs <= 0) throw new Error('internal: retain() of freed storage');
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0 && this.pooled) rt().release(this.pooled);
  }

  get alive(): boolean {
    return this.refs > 0;
  }
}

export class Tensor<D extends DType = DType> {
  readonly shape: Shape;
  readonly size: number;
  requiresGrad = false;
  /** Accumulated gradient of a leaf tensor after `backward()`. */
  grad: Tensor<'f32'> | null = null;
  /** The tape entry that produced this tensor, if it was recorded for autograd. */
  creator: TapeEntry | undefined;
  /** Optional name used in error messages and state dicts. */
  name: string | undefined;
  private disposedFlag = false;

  constructor(
    shape: Shape,
    readonly dtype: D,
    readonly storage: Storage,
    tracked = true,
  ) {
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    if (tracked) track(this);
    if (leakTracking.on) noteTensor(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.disposedFlag;
  }

  /** Binding of this tensor's bytes, for a kernel launch. */
  get binding(): Binding {
    this.assertAlive('use');
    const s = this.storage;
    return { buffer: s.buffer, offset: s.byteOffset, size: Math.max(s.byteLength, 4), pooled: s.pooled };
  }

  /** Free this tensor's memory (shared views keep it alive until they are disposed too). */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    if (leakTracking.on) forgetTensor(this);
    this.storage.release();
  }

  /** A new tensor object on the same memory, not tracked by scopes: used for saved values and grads. */
  shareRef(shape: Shape = this.shape): Tensor<D> {
    this.assertAlive('share');
    return new Tensor(shape, this.dtype, this.storage.retain(), false);
  }

  /** Copy the values to the host (flushes pending work). */
  async toArray(): Promise<TypedArrayOf<D>> {
    this.assertAlive('read');
    const bytes = await rt().read({ ...this.binding, size: this.size * 4 }, `toArray of ${this.describe()}`);
    const a = this.dtype === 'f32' ? new Float32Array(bytes) : this.dtype === 'i32' ? new Int32Array(bytes) : new Uint32Array(bytes);
    return a.subarray(0, this.size) as TypedArrayOf<D>;
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): tensor of shape ${fmt(this.shape)} has ${this.size} elements, not 1`);
    return (await this.toArray())[0];
  }

  describe(): string {
    return `${this.name ? this.name + ' ' : ''}${this.dtype}${fmt(this.shape)}`;
  }

  assertAlive(what: string): void {
    if (this.disposedFlag) throw new Error(`cannot ${what} ${this.describe()}: the tensor was disposed`);
  }
}

/**
 * An op's f32 output of `shape`: a new tensor, or, when `into` is given (a parameter's gradient slot, see
 * BackwardFn), a scope-tracked tensor on `into`'s memory for the kernel to write.
 */
export function emptyOrInto(into: Tensor<'f32'> | undefined, shape: Shape, label: string): Tensor<'f32'> {
  if (!into) return empty(shape, 'f32', label);
  if (into.size !== numel(shape)) throw new Error(`internal: ${label} writes ${fmt(shape)} into ${into.describe()}`);
  return new Tensor(shape, 'f32', into.storage.retain());
}

/** A new tensor on a fresh pooled buffer (contents undefined until a kernel writes them). */
export function empty<D extends DType>(shape: Shape, dtype: D, label: string): Tensor<D> {
  checkShape(label, shape);
  const bytes = numel(shape) * 4;
  const p = rt().alloc(bytes, label);
  return new Tensor(shape, dtype, new Storage(p.buffer, 0, bytes, p));
}

/** A tensor holding a copy of host data. */
export function fromArray<D extends DType = 'f32'>(data: ArrayLike<number>, shape: Shape, dtype: D = 'f32' as D): Tensor<D> {
  checkShape('fromArray', shape);
  const n = numel(shape);
  if (data.length !== n) throw new Error(`fromArray: ${data.length} values do not fill shape ${fmt(shape)} (${n} elements)`);
  const typed = dtype === 'f32' ? Float32Array.from(data) : dtype === 'i32' ? Int32Array.from(data) : Uint32Array.from(data);
  const p = rt().upload(n > 0 ? typed : new Float32Array(1), 'fromArray');
  return new Tensor(shape, dtype, new Storage(p.buffer, 0, n * 4, p));
}

/** A scalar f32 tensor. */
export function scalar(value: number): Tensor<'f32'> {
  return fromArray([value], []);
}
