// Reductions along axes (sum, mean, max, min) with keepdim, and sumTo for broadcasting backwards.
import { reduceColsKernel, reduceRowsKernel, REDUCE_TILE_C, type ReduceOp } from '../../kernels/reduce.js';
import { noGrad, recordOp } from '../autograd.js';
import { fmt, normAxes, numel, type Shape } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { compare, div, mul } from './elementwise.js';
import { spill, spillGroups } from '../../kernels/kernel.js';
import { assertFloat, launch, opLabel } from './launch.js';
import { broadcastTo, permute, reshape } from './layout.js';

export type Axes = number | readonly number[];

function keptShape(shape: Shape, axes: number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** The raw reduction, no autograd: result has the keepdim=false shape. */
function reduceRaw(op: ReduceOp, x: Tensor, axes: number[], scale: number, label: string): Tensor<'f32'> {
  const outShape = keptShape(x.shape, axes, false);
  if (axes.length === 0) return noGrad(() => mul(x, scale));
  const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
  let src = x;
  let A: number, R: number, C: number;
  if (contiguous) {
    A = numel(x.shape.slice(0, axes[0]));
    R = numel(axes.map((a) => x.shape[a]));
    C = numel(x.shape.slice(axes[axes.length - 1] + 1));
  } else {
    const kept = [...x.shape.keys()].filter((a) => !axes.includes(a));
    src = permute(x, [...kept, ...axes]);
    A = numel(kept.map((a) => x.shape[a]));
    R = numel(axes.map((a) => x.shape[a]));
    C = 1;
  }
  const out = empty(outShape, 'f32', label);
  if (A * C > 0) {
    if (R === 0) throw new Error(`${label}: cannot reduce over an empty axis`);
    const u = { A, R, C, scale };
    if (C === 1) launch(reduceRowsKernel(op), u, [out], [src], spillGroups(A), label);
    else launch(reduceColsKernel(op), u, [out], [src], [Math.ceil(C / REDUCE_TILE_C), ...spill(A)], label);
  }
  if (src !== x) src.dispose();
  return out;
}

/** Sum over `axes` (all when omitted). */
export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor<'f32'> {
  return sumScaled('sum', x, axes, keepdim, () => 1);
}

/** Mean over `axes` (all when omitted). */
export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor<'f32'> {
  return sumScaled('mean', x, axes, keepdim, (r) => 1 / r);
}

function sumScaled(name: string, x: Tensor, axes: Axes | undefined, keepdim: boolean, scaleOf: (r: number) => number): Tensor<'f32'> {
  assertFloat(name, x);
  const ax = normAxes(name, axes, x.rank);
  const scale = scaleOf(numel(ax.map((a) => x.shape[a])));
  const label = opLabel(`${name}[${ax}]`, [x]);
  const raw = reduceRaw('sum', x, ax, scale, label);
  const y = keepdim ? reshape(raw, keptShape(x.shape, ax, true)) : raw;
  if (y !== raw) raw.dispose();
  recordOp(name, [x], [y], ([g]) => [mul(broadcastTo(reshape(g!, keptShape(x.shape, ax, true)), x.shape), scale)]);
  return y;
}

/** Max over `axes`; the gradient is shared equally between tied maxima (as torch.amax). */
export function max(x: Tensor, axes?: Axes, keepdim = false): Tensor<'f32'> {
  return extremum('max', x, axes, keepdim);
}

/** Min over `axes`; the gradient is shared equally between tied minima (as torch.amin). */
export function min(x: Tensor, axes?: Axes, keepdim = false): Tensor<'f32'> {
  return extremum('min', x, axes, keepdim);
}

function extremum(op: 'max' | 'min', x: Tensor, axes: Axes | undefined, keepdim: boolean): Tensor<'f32'> {
  assertFloat(op, x);
  const ax = normAxes(op, axes, x.rank);
  const label = opLabel(`${op}[${ax}]`, [x]);
  const raw = reduceRaw(op, x, ax, 1, label);
  const kshape = keptShape(x.shape, ax, true);
  const y = keepdim ? reshape(raw, kshape) : raw;
  if (y !== raw) raw.dispose();
  recordOp(
    op,
    [x],
    [y],
    ([g], [sx, sy]) => {
      const hit = compare('eq', sx, reshape(sy, kshape));
      const count = reduceRaw('sum', hit, ax, 1, `${label} backward`);
      return [mul(hit, div(reshape(g!, kshape), reshape(count, kshape)))];
    },
    [x, y],
  );
  return y;
}

/** Sum `g` down to `shape`, undoing a broadcast (used by every broadcasting backward). */
export function sumTo(g: Tensor<'f32'>, shape: Shape): Tensor<'f32'> {
  if (g.rank === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const off = g.rank - shape.length;
  if (off < 0) throw new Error(`internal: sumTo cannot grow ${fmt(g.shape)} to ${fmt(shape)}`);
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < off || (shape[i - off] === 1 && d !== 1)) axes.push(i);
  });
  const raw = reduceRaw('sum', g, axes, 1, opLabel('sumTo', [g]));
  const out = reshape(raw, shape);
  raw.dispose();
  return out;
}
