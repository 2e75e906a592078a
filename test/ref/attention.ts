// Float64 reference attention: the full [Tq, Tk] score matrix per (b, h), an explicit softmax, and
// the textbook backward (P, dP, dS) for checking gradients at sizes finite differences cannot afford.
import { broadcastStrides, type Shape } from '../../engine/shape.js';

export type F64 = Float64Array;

export interface AttnDims {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  Dh: number;
}

export interface AttnRefOptions {
  /** Additive mask broadcastable to [B, H, Tq, Tk]. */
  mask?: { data: ArrayLike<number>; shape: Shape };
  scale?: number;
}

/** Mask values at or below this count as "masked out": a row with only such keys is all zeros. */
export const MASKED_AT = -1e30;

/**
 * Softmax probabilities [B, H, Tq, Tk] of q [B, H, Tq, Dh] against k [B, H, Tk, Dh]. A row whose
 * every key is masked (mask <= -1e30, -Infinity included) is all zeros.
 */
export function attentionProbsRef(q: F64, k: F64, d: AttnDims, opts: AttnRefOptions = {}): F64 {
  const { B, H, Tq, Tk, Dh } = d;
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  const ms = opts.mask ? broadcastStrides(opts.mask.shape, [B, H, Tq, Tk]) : [0, 0, 0, 0];
  const P = new Float64Array(B * H * Tq * Tk);
  const s = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      for (let i = 0; i < Tq; i++) {
        let max = -Infinity;
        let live = false;
        for (let j = 0; j < Tk; j++) {
          let dot = 0;
          for (let e = 0; e < Dh; e++) dot += q[(bh * Tq + i) * Dh + e] * k[(bh * Tk + j) * Dh + e];
          const m = opts.mask ? opts.mask.data[b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3]] : 0;
          if (m > MASKED_AT) live = true;
          s[j] = dot * scale + m;
          max = Math.max(max, s[j]);
        }
        if (!live) continue;
        let sum = 0;
        for (let j = 0; j < Tk; j++) sum += s[j] = Math.exp(s[j] - max);
        for (let j = 0; j < Tk; j++) P[(bh * Tq + i) * Tk + j] = s[j] / sum;
      }
    }
  }
  return P;
}

/** P v: [B, H, Tq, Dh]. */
function applyProbs(P: F64, v: F64, d: AttnDims): F64 {
  const { B, H, Tq, Tk, Dh } = d;
  const out = new Float64Array(B * H * Tq * Dh);
  for (let bh = 0; bh < B * H; bh++) {
    for (let i = 0; i < Tq; i++) {
      for (let j = 0; j < Tk; j++) {
        const p = P[(bh * Tq + i) * Tk + j];
        if (p === 0) continue;
        for (let e = 0; e < Dh; e++) out[(bh * Tq + i) * Dh + e] += p * v[(bh * Tk + j) * Dh + e];
      }
    }
  }
  return out;
}

/** softmax(q k^T * scale + mask) v: [B, H, Tq, Dh]. */
export function attentionRef(q: F64, k: F64, v: F64, d: AttnDims, opts: AttnRefOptions = {}): F64 {
  return applyProbs(attentionProbsRef(q, k, d, opts), v, d);
}

/** Gradients of sum(attention(q, k, v) * g) with respect to q, k and v. */
export function attentionBackwardRef(q: F64, k: F64, v: F64, g: F64, d: AttnDims, opts: AttnRefOptions = {}): [F64, F64, F64] {
  const { B, H, Tq, Tk, Dh } = d;
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  const P = attentionProbsRef(q, k, d, opts);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const dp = new Float64Array(Tk);
  for (let bh = 0; bh < B * H; bh++) {
    for (let i = 0; i < Tq; i++) {
      const pi = (bh * Tq + i) * Tk;
      let rowDot = 0;
      for (let j = 0; j < Tk; j++) {
        let acc = 0;
        for (let e = 0; e < Dh; e++) acc += g[(bh * Tq + i) * Dh + e] * v[(bh * Tk + j) * Dh + e];
        dp[j] = acc;
        rowDot += P[pi + j] * acc;
      }
      for (let j = 0; j < Tk; j++) {
        const p = P[pi + j];
        const ds = p * (dp[j] - rowDot) * scale;
        for (let e = 0; e < Dh; e++) {
          dv[(bh * Tk + j) * Dh + e] += p * g[(bh * Tq + i) * Dh + e];
          dq[(bh * Tq + i) * Dh + e] += ds * k[(bh * Tk + j) * Dh + e];
          dk[(bh * Tk + j) * Dh + e] += ds * q[(bh * Tq + i) * Dh + e];
        }
      }
    }
  }
  return [dq, dk, dv];
}

/** Attention of query 0 to keys 1..Tk-1, averaged over heads: [B, Tk - 1]. */
export function clsAttentionRef(q: F64, k: F64, d: AttnDims, opts: AttnRefOptions = {}): F64 {
  const { B, H, Tq, Tk } = d;
  const P = attentionProbsRef(q, k, d, opts);
  const out = new Float64Array(B * (Tk - 1));
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let j = 1; j < Tk; j++) out[b * (Tk - 1) + j - 1] += P[((b * H + h) * Tq + 0) * Tk + j] / H;
    }
  }
  return out;
}
