// Float64 references of the distillation losses (docs/algorithm.md §5.1, §5.8) and of cosine-argmax patch matching
// (docs/algorithm.md §5.5), written as literal loops for clarity, not speed.
export type F64 = Float64Array;

export interface Temps {
  studentTemp: number;
  teacherTemp: number;
  /** [C], subtracted from the teacher logits. */
  center?: F64;
}

/** softmax((x[row] - center) / temp) of one row of length C starting at `off`. */
export function temperedSoftmax(x: ArrayLike<number>, off: number, C: number, temp: number, center?: ArrayLike<number>): F64 {
  const y = new Float64Array(C);
  let m = -Infinity;
  for (let c = 0; c < C; c++) {
    y[c] = (x[off + c] - (center ? center[c] : 0)) / temp;
    m = Math.max(m, y[c]);
  }
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(y[c] - m);
  for (let c = 0; c < C; c++) y[c] = Math.exp(y[c] - m) / s;
  return y;
}

/** log_softmax(x[row] / temp). */
export function temperedLogSoftmax(x: ArrayLike<number>, off: number, C: number, temp: number): F64 {
  const y = new Float64Array(C);
  let m = -Infinity;
  for (let c = 0; c < C; c++) {
    y[c] = x[off + c] / temp;
    m = Math.max(m, y[c]);
  }
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(y[c] - m);
  const lse = m + Math.log(s);
  for (let c = 0; c < C; c++) y[c] -= lse;
  return y;
}

/** H(P, log S) = -sum_c P[c] log S[c]. */
export function crossEntropy(p: F64, logS: F64): number {
  let h = 0;
  for (let c = 0; c < p.length; c++) h -= p[c] * logS[c];
  return h;
}

/** Row-wise soft cross-entropy: student [N, C], teacher [Nt, C] (row teacherIndex[i] or i), times weight[i]. */
export function softCrossEntropyRef(s: F64, t: F64, C: number, o: Temps & { weight?: F64; teacherIndex?: ArrayLike<number> }): F64 {
  const N = s.length / C;
  const out = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const ti = o.teacherIndex ? o.teacherIndex[i] : i;
    const p = temperedSoftmax(t, ti * C, C, o.teacherTemp, o.center);
    const logS = temperedLogSoftmax(s, i * C, C, o.studentTemp);
    out[i] = crossEntropy(p, logS) * (o.weight ? o.weight[i] : 1);
  }
  return out;
}

/** Analytic gradient of sum_i g[i] * loss_i w.r.t. the raw student outputs (for sizes too big for finite differences). */
export function softCrossEntropyGradRef(s: F64, t: F64, C: number, g: F64, o: Temps & { weight?: F64; teacherIndex?: ArrayLike<number> }): F64 {
  const N = s.length / C;
  const out = new Float64Array(s.length);
  for (let i = 0; i < N; i++) {
    const ti = o.teacherIndex ? o.teacherIndex[i] : i;
    const p = temperedSoftmax(t, ti * C, C, o.teacherTemp, o.center);
    const q = temperedSoftmax(s, i * C, C, o.studentTemp);
    const k = (g[i] * (o.weight ? o.weight[i] : 1)) / o.studentTemp;
    for (let c = 0; c < C; c++) out[i * C + c] = k * (q[c] - p[c]);
  }
  return out;
}

/** sum_ij mask[i, j] * H(P_i, log S_j) by an explicit double loop: teacher [Nt, C], student [Ns, C], mask [Nt, Ns]. */
export function softCrossEntropyPairsRef(s: F64, t: F64, mask: F64, C: number, o: Temps): number {
  const Ns = s.length / C;
  const Nt = t.length / C;
  const logS = Array.from({ length: Ns }, (_, j) => temperedLogSoftmax(s, j * C, C, o.studentTemp));
  let total = 0;
  for (let i = 0; i < Nt; i++) {
    const p = temperedSoftmax(t, i * C, C, o.teacherTemp, o.center);
    for (let j = 0; j < Ns; j++) if (mask[i * Ns + j] !== 0) total += mask[i * Ns + j] * crossEntropy(p, logS[j]);
  }
  return total;
}

/** Analytic gradient of the pair sum w.r.t. the raw student outputs, scaled by g. */
export function softCrossEntropyPairsGradRef(s: F64, t: F64, mask: F64, C: number, g: number, o: Temps): F64 {
  const Ns = s.length / C;
  const Nt = t.length / C;
  const out = new Float64Array(s.length);
  const ps = Array.from({ length: Nt }, (_, i) => temperedSoftmax(t, i * C, C, o.teacherTemp, o.center));
  for (let j = 0; j < Ns; j++) {
    const q = temperedSoftmax(s, j * C, C, o.studentTemp);
    for (let i = 0; i < Nt; i++) {
      const m = mask[i * Ns + j];
      for (let c = 0; c < C; c++) out[j * C + c] += ((g * m) / o.studentTemp) * (q[c] - ps[i][c]);
    }
  }
  return out;
}

/** center * momentum + mean over the rows of t [R, C] * (1 - momentum). */
export function updateCenterRef(center: F64, t: F64, momentum: number): F64 {
  const C = center.length;
  const R = t.length / C;
  const out = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let acc = 0;
    for (let r = 0; r < R; r++) acc += t[r * C + c];
    out[c] = center[c] * momentum + (acc / R) * (1 - momentum);
  }
  return out;
}

export interface Match {
  /** argmax_m cos(a[g, n], b[g, m]), lowest index on exact ties; cosine 0 for zero vectors. */
  index: Int32Array;
  /** Best minus runner-up cosine (Infinity when M = 1): rows below float32 noise may legitimately differ. */
  margin: F64;
}

/** Brute-force cosine argmax over groups: a [G, N, D], b [G, M, D]. */
export function cosineArgmaxRef(a: ArrayLike<number>, b: ArrayLike<number>, G: number, N: number, M: number, D: number): Match {
  const norm = (x: ArrayLike<number>, off: number): number => {
    let s = 0;
    for (let d = 0; d < D; d++) s += x[off + d] * x[off + d];
    return Math.sqrt(s);
  };
  const index = new Int32Array(G * N);
  const margin = new Float64Array(G * N);
  for (let g = 0; g < G; g++) {
    for (let n = 0; n < N; n++) {
      const ao = (g * N + n) * D;
      const na = norm(a, ao);
      let best = -Infinity;
      let second = -Infinity;
      let at = 0;
      for (let m = 0; m < M; m++) {
        const bo = (g * M + m) * D;
        const nb = norm(b, bo);
        let dot = 0;
        for (let d = 0; d < D; d++) dot += a[ao + d] * b[bo + d];
        const cos = na > 0 && nb > 0 ? dot / (na * nb) : 0;
        if (cos > best) {
          second = best;
          best = cos;
          at = m;
        } else if (cos > second) second = cos;
      }
      index[g * N + n] = at;
      margin[g * N + n] = best - second;
    }
  }
  return { index, margin };
}
