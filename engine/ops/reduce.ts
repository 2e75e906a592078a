// Reductions along axes (sum, mean, max, min) with keepdim, and sumTo for broadcasting backwards.
import { recordOp } from '../autograd.js';
import { normAxes, numel } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { compare, div, mul } from './elementwise.js';
import { assertFloat, opLabel } from './launch.js';
import { broadcastTo, reshape } from './layout.js';
import { keptShape, reduceRaw } from './primitives.js';

export { sumTo } from './primitives.js';

export type Axes = number | readonly number[];

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
