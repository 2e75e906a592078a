// Shape and data-movement ops: reshape, permute, slice, concat, expand, index_select.
import { gatherKernel, scatterAddKernel } from '../../kernels/layout.js';
import { grid1d } from '../../kernels/kernel.js';
import { recordOp } from '../autograd.js';
import { broadcastShapes, broadcastStrides, checkShape, fmt, normAxis, numel, sameShape, stridesOf } from '../shape.js';
import { empty, Tensor } from '../tensor.js';
import { rt } from '../runtime.js';
import { launch, opLabel } from './launch.js';
import { copyView, fill, sumTo } from './primitives.js';

/** Same data, new shape (one axis may be -1). Shares memory with `x`. */
export function reshape<T extends Tensor>(x: T, shape: readonly number[]): T {
  const resolved = resolveShape(x, shape);
  const y = new Tensor(resolved, x.dtype, x.storage.retain()) as T;
  recordOp('reshape', [x], [y], ([g]) => [reshape(g!, x.shape)]);
  return y;
}

function resolveShape(x: Tensor, shape: readonly number[]): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (free >= 0) {
    const rest = numel(out.filter((_, i) => i !== free));
    if (rest === 0 || x.size % rest !== 0) throw new Error(`reshape: cannot reshape ${fmt(x.shape)} to ${fmt(shape)}`);
    out[free] = x.size / rest;
  }
  checkShape('reshape', out);
  if (numel(out) !== x.size) throw new Error(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)} (${numel(out)} elements)`);
  return out;
}

/** Remove axes of size 1 (all of them, or the one given). */
export function squeeze<T extends Tensor>(x: T, axis?: number): T {
  if (axis === undefined)
    return reshape(
      x,
      x.shape.filter((d) => d !== 1),
    );
  const a = normAxis('squeeze', axis, x.rank);
  if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${axis} of ${fmt(x.shape)} has size ${x.shape[a]}, not 1`);
  return reshape(
    x,
    x.shape.filter((_, i) => i !== a),
  );
}

export function unsqueeze<T extends Tensor>(x: T, axis: number): T {
  const a = normAxis('unsqueeze', axis, x.rank + 1);
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

/** Reorder axes: out.shape[i] = x.shape[dims[i]]. */
export function permute<T extends Tensor>(x: T, dims: readonly number[]): T {
  const label = opLabel(`permute[${dims}]`, [x]);
  const d = dims.map((a) => normAxis('permute', a, x.rank));
  if (d.length !== x.rank || new Set(d).size !== d.length) throw new Error(`${label}: [${dims}] is not a permutation of the ${x.rank} axes`);
  const shape = d.map((a) => x.shape[a]);
  const xs = stridesOf(x.shape);
  const out = empty(shape, x.dtype, label) as T;
  copyView(
    out,
    x,
    shape,
    0,
    d.map((a) => xs[a]),
    0,
    stridesOf(shape),
    label,
  );
  const inverse = new Array<number>(d.length);
  d.forEach((a, i) => (inverse[a] = i));
  recordOp('permute', [x], [out], ([g]) => [permute(g!, inverse)]);
  return out;
}

/** Swap two axes. */
export function transpose<T extends Tensor>(x: T, a = -2, b = -1): T {
  const dims = [...x.shape.keys()];
  const i = normAxis('transpose', a, x.rank);
  const j = normAxis('transpose', b, x.rank);
  [dims[i], dims[j]] = [dims[j], dims[i]];
  return permute(x, dims);
}

/** The block of `x` starting at `begin` with extent `size` (-1: to the end), as tf.slice. */
export function slice<T extends Tensor>(x: T, begin: readonly number[], size: readonly number[]): T {
  const label = opLabel(`slice[${begin}:${size}]`, [x]);
  if (begin.length !== x.rank || size.length !== x.rank) throw new Error(`${label}: begin and size need ${x.rank} entries`);
  const ext = size.map((s, i) => (s === -1 ? x.shape[i] - begin[i] : s));
  ext.forEach((s, i) => {
    if (begin[i] < 0 || s < 0 || begin[i] + s > x.shape[i]) throw new Error(`${label}: axis ${i} range [${begin[i]}, ${begin[i] + s}) is outside 0..${x.shape[i]}`);
  });
  const xs = stridesOf(x.shape);
  const offset = begin.reduce((acc, b, i) => acc + b * xs[i], 0);
  const out = empty(ext, x.dtype, label) as T;
  copyView(out, x, ext, offset, xs, 0, stridesOf(ext), label);
  recordOp('slice', [x], [out], ([g]) => {
    const full = fill(x.shape, 0);
    copyView(full, g!, ext, 0, stridesOf(ext), offset, xs, `${label} backward`);
    return [full];
  });
  return out;
}

/** `length` entries of one axis from `start`, as torch.narrow. */
export function narrow<T extends Tensor>(x: T, axis: number, start: number, length: number): T {
  const a = normAxis('narrow', axis, x.rank);
  const begin = x.shape.map((_, i) => (i === a ? start : 0));
  const size = x.shape.map((d, i) => (i === a ? length : d));
  return slice(x, begin, size);
}

/** Join tensors along an existing axis (torch.cat). */
export function concat<T extends Tensor>(xs: readonly T[], axis: number): T {
  if (xs.length === 0) throw new Error('concat: no tensors given');
  const label = opLabel('concat', xs);
  const a = normAxis('concat', axis, xs[0].rank);
  for (const t of xs) {
    const ok = t.rank === xs[0].rank && t.dtype === xs[0].dtype && t.shape.every((d, i) => i === a || d === xs[0].shape[i]);
    if (!ok) throw new Error(`${label}: shapes ${xs.map((q) => fmt(q.shape)).join(', ')} differ outside axis ${axis} (or in dtype)`);
  }
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((acc, t) => acc + t.shape[a], 0);
  const out = empty(shape, xs[0].dtype, label) as T;
  const os = stridesOf(shape);
  const starts: number[] = [];
  let at = 0;
  for (const t of xs) {
    starts.push(at);
    copyView(out, t, t.shape, 0, stridesOf(t.shape), at * os[a], os, label);
    at += t.shape[a];
  }
  recordOp('concat', xs, [out], ([g], _s, needs) => xs.map((t, k) => (needs[k] ? narrow(g!, a, starts[k], t.shape[a]) : null)));
  return out;
}

/** Stack tensors of one shape along a new axis. */
export function stack<T extends Tensor>(xs: readonly T[], axis = 0): T {
  return concat(
    xs.map((t) => unsqueeze(t, axis)),
    axis,
  );
}

/** Materialise `x` broadcast to `shape` (torch.expand followed by a copy). */
export function broadcastTo<T extends Tensor>(x: T, shape: readonly number[]): T {
  const label = opLabel(`broadcastTo${fmt(shape)}`, [x]);
  const full = broadcastShapes('broadcastTo', x.shape, shape);
  if (!sameShape(full, shape)) throw new Error(`${label}: ${fmt(x.shape)} cannot be broadcast to ${fmt(shape)}`);
  const out = empty(shape, x.dtype, label) as T;
  copyView(out, x, shape, 0, broadcastStrides(x.shape, shape), 0, stridesOf(shape), label);
  recordOp('broadcastTo', [x], [out], ([g], _s, _n, into) => [sumTo(g!, x.shape, into[0])]);
  return out;
}

/** Rows of `x` along `axis` picked by the i32 `indices` (torch.index_select). */
export function indexSelect<T extends Tensor>(x: T, axis: number, indices: Tensor): T {
  const label = opLabel('indexSelect', [x, indices]);
  if (indices.rank !== 1 || indices.dtype !== 'i32') throw new Error(`${label}: indices must be a 1-D i32 tensor, got ${indices.describe()}`);
  const a = normAxis('indexSelect', axis, x.rank);
  const A = numel(x.shape.slice(0, a));
  const N = x.shape[a];
  const C = numel(x.shape.slice(a + 1));
  const M = indices.size;
  const shape = [...x.shape];
  shape[a] = M;
  const out = empty(shape, x.dtype, label) as T;
  const n = A * M * C;
  if (n > 0) launch(gatherKernel(x.dtype), { n, N, M, C }, [out], [x, indices], grid1d(n), label);
  recordOp(
    'indexSelect',
    [x, indices],
    [out],
    ([g], [idx]) => {
      const dx = empty(x.shape, 'f32', `${label} backward`);
      const m = A * N * C;
      if (m > 0) launch(scatterAddKernel(), { n: m, N, M, C }, [dx], [g!, idx], grid1d(m), `${label} backward`);
      return [dx, null];
    },
    [indices],
  );
  return out;
}

/** A new tensor on the same memory that autograd treats as a constant. */
export function detach<T extends Tensor>(x: T): T {
  return new Tensor(x.shape, x.dtype, x.storage.retain()) as T;
}

/** Overwrite `dst`'s values with `src`'s in place (state such as centres; no autograd). */
export function assign(dst: Tensor, src: Tensor): void {
  const label = opLabel('assign', [dst, src]);
  if (!sameShape(dst.shape, src.shape) && dst.size !== src.size) throw new Error(`${label}: shapes ${fmt(dst.shape)} and ${fmt(src.shape)} differ`);
  if (dst.dtype !== src.dtype) throw new Error(`${label}: dtypes ${dst.dtype} and ${src.dtype} differ`);
  if (src.size > 0) rt().copy(src.binding, dst.binding, src.size * 4, label);
}
