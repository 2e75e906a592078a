// Float64 reference implementations of the core ops, written for clarity, not speed.
import { broadcastShapes, broadcastStrides, numel, stridesOf, type Shape } from '../../engine/shape.js';

export type F64 = Float64Array;

/** Multi-index of linear index i in `shape`. */
export function unravel(i: number, shape: Shape): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

export function map(x: F64, f: (v: number) => number): F64 {
  return x.map(f);
}

/** Broadcasting elementwise combination of any number of inputs. */
export function zipBroadcast(xs: { data: F64; shape: Shape }[], f: (...v: number[]) => number): { data: F64; shape: number[] } {
  const shape = xs.reduce<number[]>((s, x) => broadcastShapes('ref', s, x.shape), []);
  const strides = xs.map((x) => broadcastStrides(x.shape, shape));
  const out = new Float64Array(numel(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    const vals = xs.map((x, k) => x.data[idx.reduce((acc, c, d) => acc + c * strides[k][d], 0)]);
    out[i] = f(...vals);
  }
  return { data: out, shape };
}

/** Reduce over `axes` with `f` starting from `init` (keepdim shape is implied by the caller). */
export function reduceAxes(x: F64, shape: Shape, axes: number[], init: number, f: (acc: number, v: number) => number): F64 {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const os = stridesOf(outShape);
  const out = new Float64Array(numel(outShape)).fill(init);
  for (let i = 0; i < x.length; i++) {
    const idx = unravel(i, shape);
    const o = idx.reduce((acc, c, d) => acc + (axes.includes(d) ? 0 : c * os[d]), 0);
    out[o] = f(out[o], x[i]);
  }
  return out;
}

export function permute(x: F64, shape: Shape, dims: number[]): F64 {
  const outShape = dims.map((d) => shape[d]);
  const xs = stridesOf(shape);
  const out = new Float64Array(x.length);
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, outShape);
    out[i] = x[idx.reduce((acc, c, k) => acc + c * xs[dims[k]], 0)];
  }
  return out;
}

/** erf to double precision (Numerical Recipes erfc, |error| < 1.2e-7 is not enough here: use series). */
export function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is only 1.5e-7; the reference uses the Taylor series / continued fraction.
  const ax = Math.abs(x);
  let r: number;
  if (ax < 3) {
    let term = ax;
    let s = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      s += add;
      if (Math.abs(add) < 1e-17) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * s;
  } else {
    // erfc continued fraction (Lentz) for large |x|
    let f = ax;
    for (let n = 60; n >= 1; n--) f = ax + n / 2 / f;
    r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}
