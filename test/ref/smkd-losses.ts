// Float64 transcriptions of the phase-1 and phase-2 losses (docs/algorithm.md §5.3-§5.5), written as its sums,
// loop by loop, with no batching or masking tricks: the independent reference of train/losses.ts.
import { crossEntropy, temperedLogSoftmax, temperedSoftmax, type F64 } from './distill.js';

/** Row-major host arrays in the crop-major layout (row v·B + i). */
export interface RefInputs {
  G: number;
  B: number;
  L: number;
  Np: number;
  K: number;
  D: number;
  labels: Int32Array;
  /** [G·B, K] */
  teacherCls: F64;
  studentCls: F64;
  /** [L·B, K] */
  studentLocalCls: F64;
  /** [G·B, Np, K] */
  teacherPatch: F64;
  studentPatch: F64;
  /** [G·B, Np, D] */
  teacherFeatures: F64;
  studentFeatures: F64;
  /** [G·B, Np], not normalised. */
  attention: F64;
  /** [G·B, Np], 1 = masked. */
  masks: F64;
  center: F64;
  center2: F64;
  studentTemp: number;
  teacherTemp: number;
  teacherPatchTemp: number;
}

export interface RefLoss {
  cls: number;
  patch: number;
  mim: number;
  total: number;
}

/** H(P_t^cls[q, i], log P_s^cls[v, j]) with student view v over globals then locals. */
function clsTerm(c: RefInputs, q: number, i: number, v: number, j: number): number {
  const { B, G, K } = c;
  const p = temperedSoftmax(c.teacherCls, (q * B + i) * K, K, c.teacherTemp, c.center);
  const logS = v < G ? temperedLogSoftmax(c.studentCls, (v * B + j) * K, K, c.studentTemp) : temperedLogSoftmax(c.studentLocalCls, ((v - G) * B + j) * K, K, c.studentTemp);
  return crossEntropy(p, logS);
}

/** H(P_t^patch[t, y, j], log P_s^patch[s, x, n]). */
function patchTerm(c: RefInputs, t: number, y: number, j: number, s: number, x: number, n: number): number {
  const { B, Np, K } = c;
  const p = temperedSoftmax(c.teacherPatch, ((t * B + y) * Np + j) * K, K, c.teacherPatchTemp, c.center2);
  return crossEntropy(p, temperedLogSoftmax(c.studentPatch, ((s * B + x) * Np + n) * K, K, c.studentTemp));
}

/** L_mim of docs/algorithm.md §5.3. */
function mimRef(c: RefInputs): number {
  const { G, B, Np } = c;
  let total = 0;
  for (let v = 0; v < G; v++) {
    for (let i = 0; i < B; i++) {
      let sum = 0;
      let count = 0;
      for (let n = 0; n < Np; n++) {
        const m = c.masks[(v * B + i) * Np + n];
        if (m) sum += patchTerm(c, v, i, n, v, i, n);
        count += m;
      }
      total += sum / Math.max(1, count) / B;
    }
  }
  return total / G;
}

export function ibotLossRef(c: RefInputs, o: { lambda1: number; lambda3: number }): RefLoss {
  const { G, L, B } = c;
  let sum = 0;
  for (let q = 0; q < G; q++) for (let v = 0; v < G + L; v++) if (v !== q) for (let i = 0; i < B; i++) sum += clsTerm(c, q, i, v, i);
  const cls = sum / (G * (G + L - 1) * B);
  const mim = mimRef(c);
  return { cls, patch: 0, mim, total: o.lambda1 * cls + o.lambda3 * mim };
}

function unit(a: F64, off: number, D: number): F64 {
  let s = 0;
  for (let d = 0; d < D; d++) s += a[off + d] ** 2;
  const n = Math.max(Math.sqrt(s), 1e-12);
  return Float64Array.from({ length: D }, (_, d) => a[off + d] / n);
}

/** n* = argmax_n <f̂_s[s, x, n], f̂_t[t, y, j]>, lowest index on ties. */
function nearest(c: RefInputs, s: number, x: number, t: number, y: number, j: number): number {
  const { B, Np, D } = c;
  const ft = unit(c.teacherFeatures, ((t * B + y) * Np + j) * D, D);
  let best = -Infinity;
  let at = 0;
  for (let n = 0; n < Np; n++) {
    const fs = unit(c.studentFeatures, ((s * B + x) * Np + n) * D, D);
    let dot = 0;
    for (let d = 0; d < D; d++) dot += fs[d] * ft[d];
    if (dot > best) {
      best = dot;
      at = n;
    }
  }
  return at;
}

export interface SmkdRefOptions {
  lambda1: number;
  lambda2: number;
  lambda3: number;
  patchWeighting: 'uniform' | 'weighted';
  keepGlobalSelfPairs?: boolean;
}

export function smkdLossRef(c: RefInputs, o: SmkdRefOptions): RefLoss {
  const { G, L, B, Np, labels } = c;
  // 5.4: global-global same-class pairs of distinct images for every (q, v), plus global-local same image.
  let sum = 0;
  let count = 0;
  for (let q = 0; q < G; q++) {
    for (let v = 0; v < G; v++) {
      for (let i = 0; i < B; i++) {
        for (let j = 0; j < B; j++) {
          if (labels[i] !== labels[j] || (i === j && !o.keepGlobalSelfPairs)) continue;
          sum += clsTerm(c, q, i, v, j);
          count++;
        }
      }
    }
    for (let v = G; v < G + L; v++) {
      for (let i = 0; i < B; i++) {
        sum += clsTerm(c, q, i, v, i);
        count++;
      }
    }
  }
  const cls = count > 0 ? sum / count : 0;
  // 5.5: one contribution per (s, t, group with k >= 2, teacher image y).
  const contributions: number[] = [];
  for (let s = 0; s < G; s++) {
    for (let t = 0; t < G; t++) {
      if (s === t) continue;
      for (const label of new Set(labels)) {
        const group = [...labels.keys()].filter((i) => labels[i] === label);
        const k = group.length;
        if (k < 2) continue;
        for (const y of group) {
          let asum = 0;
          for (let j = 0; j < Np; j++) asum += c.attention[(t * B + y) * Np + j];
          let acc = 0;
          for (const x of group) {
            if (x === y) continue;
            for (let j = 0; j < Np; j++) {
              const l = patchTerm(c, t, y, j, s, x, nearest(c, s, x, t, y, j));
              acc += o.patchWeighting === 'uniform' ? l : (c.attention[(t * B + y) * Np + j] / asum) * l;
            }
          }
          contributions.push(o.patchWeighting === 'uniform' ? acc / ((k - 1) * Np) : acc / (k - 1));
        }
      }
    }
  }
  const patch = contributions.length > 0 ? contributions.reduce((a, b) => a + b) / contributions.length : 0;
  const mim = o.lambda3 > 0 ? mimRef(c) : 0;
  return { cls, patch, mim, total: o.lambda1 * cls + o.lambda2 * patch + o.lambda3 * mim };
}
