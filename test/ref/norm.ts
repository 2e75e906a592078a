// Float64 references of the normalisation and softmax families, row by row over the last axis,
// written for clarity, not speed. Analytic backward formulas are here too, for shapes too large
// for finite differences; the tests check them against finite differences on small shapes.
import type { Shape } from '../../engine/shape.js';
import { permute } from './basic.js';

export type F64 = Float64Array;

/** Apply `f` to each row of length `d` of `x`, writing a row of the same length. */
function byRow(x: F64, d: number, f: (row: F64, out: F64) => void): F64 {
  const out = new Float64Array(x.length);
  for (let at = 0; at < x.length; at += d) f(x.subarray(at, at + d), out.subarray(at, at + d));
  return out;
}

function rowStats(row: F64, eps: number): { mean: number; rstd: number } {
  const mean = row.reduce((a, v) => a + v, 0) / row.length;
  const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / row.length;
  return { mean, rstd: 1 / Math.sqrt(variance + eps) };
}

/** (x - mean) / sqrt(biased var + eps) * w + b per row (w, b of length d, optional). */
export function layerNorm(x: F64, d: number, w: F64 | null, b: F64 | null, eps: number): F64 {
  return byRow(x, d, (row, out) => {
    const { mean, rstd } = rowStats(row, eps);
    row.forEach((v, i) => (out[i] = (v - mean) * rstd * (w ? w[i] : 1) + (b ? b[i] : 0)));
  });
}

/** Gradients of sum(layerNorm(x) * g) with respect to x, w and b (analytic). */
export function layerNormBackward(x: F64, g: F64, d: number, w: F64 | null, eps: number): { dx: F64; dw: F64; db: F64 } {
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(d);
  const db = new Float64Array(d);
  for (let at = 0; at < x.length; at += d) {
    const row = x.subarray(at, at + d);
    const { mean, rstd } = rowStats(row, eps);
    const xhat = row.map((v) => (v - mean) * rstd);
    const gw = Float64Array.from({ length: d }, (_, i) => g[at + i] * (w ? w[i] : 1));
    const mgw = gw.reduce((a, v) => a + v, 0) / d;
    const mgwx = gw.reduce((a, v, i) => a + v * xhat[i], 0) / d;
    for (let i = 0; i < d; i++) {
      dx[at + i] = rstd * (gw[i] - mgw - xhat[i] * mgwx);
      dw[i] += g[at + i] * xhat[i];
      db[i] += g[at + i];
    }
  }
  return { dx, dw, db };
}

function rowMax(row: F64): number {
  let m = -Infinity;
  for (const v of row) m = Math.max(m, v);
  return m;
}

export function softmax(x: F64, d: number): F64 {
  return byRow(x, d, (row, out) => {
    const m = rowMax(row);
    let s = 0;
    row.forEach((v, i) => (s += out[i] = Math.exp(v - m)));
    out.forEach((v, i) => (out[i] = v / s));
  });
}

export function logSoftmax(x: F64, d: number): F64 {
  return byRow(x, d, (row, out) => {
    const m = rowMax(row);
    let s = 0;
    for (const v of row) s += Math.exp(v - m);
    const lse = m + Math.log(s);
    row.forEach((v, i) => (out[i] = v - lse));
  });
}

/** Gradient of sum(softmax(x) * g) with respect to x (analytic): y * (g - sum(g y)) per row. */
export function softmaxBackward(x: F64, g: F64, d: number): F64 {
  const y = softmax(x, d);
  const dx = new Float64Array(x.length);
  for (let at = 0; at < x.length; at += d) {
    let s = 0;
    for (let i = at; i < at + d; i++) s += g[i] * y[i];
    for (let i = at; i < at + d; i++) dx[i] = y[i] * (g[i] - s);
  }
  return dx;
}

/** x / max(||x||_2, eps) along `axis` of a tensor of `shape`. */
export function l2Normalize(x: F64, shape: Shape, axis: number, eps: number): F64 {
  const a = axis < 0 ? axis + shape.length : axis;
  const last = shape.length - 1;
  const rowNorm = (t: F64): F64 =>
    byRow(t, shape[a], (row, out) => {
      const nrm = Math.sqrt(row.reduce((acc, v) => acc + v * v, 0));
      row.forEach((v, i) => (out[i] = v / Math.max(nrm, eps)));
    });
  if (a === last) return rowNorm(x);
  const dims = [...shape.keys()];
  [dims[a], dims[last]] = [dims[last], dims[a]];
  return permute(
    rowNorm(permute(x, shape, dims)),
    dims.map((k) => shape[k]),
    dims,
  );
}

/**
 * A random shape whose last axis is `d`: 1..70 rows (fewer when d is long, so finite differences
 * stay cheap), sometimes split over two leading axes as [B, T, D] activations are.
 */
export function rowShape(r: () => number, d: number, maxNumel = 2000): number[] {
  const cap = Math.max(1, Math.min(70, Math.floor(maxNumel / d)));
  const rows = 1 + Math.floor(r() * cap);
  for (let a = 2; a < rows; a++) if (rows % a === 0 && r() < 0.5) return [a, rows / a, d];
  return [rows, d];
}
