// The non-recording building blocks that the basic op families share: fill, a strided copy between two
// views, and reductions (sumTo among them). They launch kernels and record nothing for autograd, so
// elementwise.ts, layout.ts and reduce.ts all import them here instead of importing one another: the
// backward rules of add (sumTo), broadcastTo (sumTo) and slice (fill) used to make those three files a cycle.
import { elementwiseUniforms, fillKernel, MAX_RANK, unaryKernel } from '../../kernels/elementwise.js';
import { grid1d, spill, spillGroups, type DType } from '../../kernels/kernel.js';
import { stridedCopyKernel, stridedCopyRun, stridedCopyUniforms } from '../../kernels/layout.js';
import { reduceColsKernel, reduceRowsKernel, REDUCE_TILE_C, type ReduceOp } from '../../kernels/reduce.js';
import { fmt, numel, stridesOf, type Shape } from '../shape.js';
import { empty, emptyOrInto, Tensor } from '../tensor.js';
import { softwarePaths } from '../tuning.js';
import { launch, opLabel } from './launch.js';

/** A tensor of `shape` filled with `value`. */
export function fill<D extends DType = 'f32'>(shape: Shape, value: number, dtype: D = 'f32' as D): Tensor<D> {
  const out = empty(shape, dtype, `fill${fmt(shape)}`);
  launch(fillKernel(dtype), elementwiseUniforms(out.size, value), [out], [], grid1d(out.size), `fill${fmt(shape)}`);
  return out;
}

/** Strided copy of a view of `x` into a view of `out` (both described by offsets and strides). */
export function copyView(out: Tensor, x: Tensor, view: Shape, inOffset: number, is: readonly number[], outOffset: number, os: readonly number[], label: string): void {
  const n = numel(view);
  if (n === 0) return;
  if (view.length > MAX_RANK) throw new Error(`${label}: rank ${view.length} exceeds the supported ${MAX_RANK}`);
  // Software adapters get the view's shape compiled in (one pipeline per shape; kernels/layout.ts), and a
  // thread copies a run of the innermost axis where that has 4 to 64 elements.
  const fixed = softwarePaths() ? view : undefined;
  launch(stridedCopyKernel(view.length, x.dtype, fixed), stridedCopyUniforms(n, inOffset, outOffset, view, is, os), [out], [x], grid1d(n / stridedCopyRun(fixed)), label);
}

/** The shape `shape` has after reducing `axes` (kept as size 1 with `keepdim`). */
export function keptShape(shape: Shape, axes: readonly number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** A reduction over sorted, distinct `axes`, times `scale`, with the keepdim=false shape. */
export function reduceRaw(op: ReduceOp, x: Tensor, axes: readonly number[], scale: number, label: string, into?: Tensor<'f32'>): Tensor<'f32'> {
  const outShape = keptShape(x.shape, axes, false);
  const result = (): Tensor<'f32'> => emptyOrInto(into, outShape, label);
  if (axes.length === 0) {
    const out = result();
    launch(unaryKernel('affine', x.dtype, 'f32'), elementwiseUniforms(x.size, scale, 0), [out], [x], grid1d(x.size), label);
    return out;
  }
  const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
  let src = x;
  let A: number, R: number, C: number;
  if (contiguous) {
    A = numel(x.shape.slice(0, axes[0]));
    R = numel(axes.map((a) => x.shape[a]));
    C = numel(x.shape.slice(axes[axes.length - 1] + 1));
  } else {
    // Move the reduced axes last (a permuted copy), then reduce rows.
    const kept = [...x.shape.keys()].filter((a) => !axes.includes(a));
    const order = [...kept, ...axes];
    const shape = order.map((a) => x.shape[a]);
    const xs = stridesOf(x.shape);
    src = empty(shape, x.dtype, `${label} permute`);
    copyView(
      src,
      x,
      shape,
      0,
      order.map((a) => xs[a]),
      0,
      stridesOf(shape),
      `${label} permute`,
    );
    A = numel(kept.map((a) => x.shape[a]));
    R = numel(axes.map((a) => x.shape[a]));
    C = 1;
  }
  const out = result();
  if (A * C > 0) {
    if (R === 0) throw new Error(`${label}: cannot reduce over an empty axis`);
    const u = { A, R, C, scale };
    if (C === 1) launch(reduceRowsKernel(op), u, [out], [src], spillGroups(A), label);
    else launch(reduceColsKernel(op), u, [out], [src], [Math.ceil(C / REDUCE_TILE_C), ...spill(A)], label);
  }
  if (src !== x) src.dispose();
  return out;
}

/** Sum `g` down to `shape`, undoing a broadcast (used by every broadcasting backward). Records nothing. */
export function sumTo(g: Tensor<'f32'>, shape: Shape, into?: Tensor<'f32'>): Tensor<'f32'> {
  if (g.rank === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const off = g.rank - shape.length;
  if (off < 0) throw new Error(`internal: sumTo cannot grow ${fmt(g.shape)} to ${fmt(shape)}`);
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < off || (shape[i - off] === 1 && d !== 1)) axes.push(i);
  });
  const raw = reduceRaw('sum', g, axes, 1, opLabel('sumTo', [g]), into);
  const out = new Tensor([...shape], 'f32', raw.storage.retain());
  raw.dispose();
  return out;
}
