// Float64 references of the per-episode classifiers (docs/algorithm.md §8.3: the reference code's cosine classifier and its softmax
// variant) that share nothing with train/fewshot.ts but the random draws: each loss is written as its
// formula and differentiated by central finite differences, and the optimiser is torch.optim.SGD's
// algorithm written out.
import type { Rng } from '../../engine/rng.js';

export interface SgdRefOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
}

export interface DistLinearRefOptions extends SgdRefOptions {
  scale: number;
}

/** Mean softmax cross-entropy of scores scale·g_c·<v_c, x̂>/‖v_c‖ over the batch (x̂ = x/(‖x‖ + 1e-5)). */
function batchLoss(params: Float64Array, ways: number, d: number, xs: number[][], ys: number[], scale: number): number {
  let total = 0;
  for (let b = 0; b < xs.length; b++) {
    const nx = Math.sqrt(xs[b].reduce((s, v) => s + v * v, 0)) + 1e-5;
    const scores = Array.from({ length: ways }, (_, c) => {
      let vv = 0;
      let vx = 0;
      for (let e = 0; e < d; e++) {
        const v = params[ways + c * d + e];
        vv += v * v;
        vx += (v * xs[b][e]) / nx;
      }
      return (scale * params[c] * vx) / Math.sqrt(vv);
    });
    const m = Math.max(...scores);
    const lse = m + Math.log(scores.reduce((s, v) => s + Math.exp(v - m), 0));
    total += lse - scores[ys[b]];
  }
  return total / xs.length;
}

/**
 * torch.optim.SGD (momentum, dampening, weight decay) over mini-batches of the rows 0..n-1, one
 * shuffle per epoch, with the gradient of `loss(params, batch)` by central finite differences.
 */
function sgdRef(params: Float64Array, n: number, loss: (p: Float64Array, batch: number[]) => number, rng: Rng, o: SgdRefOptions): void {
  let buf: Float64Array | null = null;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = rng.shuffle([...Array(n).keys()]);
    for (let start = 0; start < order.length; start += o.batchSize) {
      const batch = order.slice(start, start + o.batchSize);
      const grad = params.map((p, i) => {
        const h = 1e-6 * Math.max(1, Math.abs(p));
        const up = Float64Array.from(params);
        const down = Float64Array.from(params);
        up[i] += h;
        down[i] -= h;
        return (loss(up, batch) - loss(down, batch)) / (2 * h);
      });
      const dp = grad.map((gr, i) => gr + o.weightDecay * params[i]);
      buf = buf === null ? dp : buf.map((b, i) => o.momentum * b + (1 - o.dampening) * dp[i]);
      for (let i = 0; i < params.length; i++) params[i] -= o.lr * buf[i];
    }
  }
}

/** Trains on rows `xs` (labels `ys`) with the same draws as trainDistLinear: U(±1/√d) for v, then one shuffle per epoch. */
export function trainDistLinearRef(xs: number[][], ys: number[], ways: number, rng: Rng, o: DistLinearRefOptions): { g: Float64Array; v: Float64Array } {
  const d = xs[0].length;
  const bound = 1 / Math.sqrt(d);
  // params = [g (ways), v (ways·d)]
  const params = new Float64Array(ways + ways * d);
  for (let i = 0; i < ways * d; i++) params[ways + i] = rng.uniform(-bound, bound);
  for (let c = 0; c < ways; c++) {
    let s = 0;
    for (let e = 0; e < d; e++) s += params[ways + c * d + e] ** 2;
    params[c] = Math.sqrt(s);
  }
  sgdRef(
    params,
    xs.length,
    (p, batch) =>
      batchLoss(
        p,
        ways,
        d,
        batch.map((i) => xs[i]),
        batch.map((i) => ys[i]),
        o.scale,
      ),
    rng,
    o,
  );
  return { g: params.slice(0, ways), v: params.slice(ways) };
}

/**
 * The reference code's softmax classifier: Linear(d, ways) with bias and mean softmax cross-entropy, with the same
 * draws as trainLogistic (W then b from U(±1/√d), then one shuffle per epoch).
 */
export function trainLogisticRef(xs: number[][], ys: number[], ways: number, rng: Rng, o: SgdRefOptions): { w: Float64Array; b: Float64Array } {
  const d = xs[0].length;
  const bound = 1 / Math.sqrt(d);
  // params = [W (ways·d), b (ways)]
  const params = Float64Array.from({ length: ways * d + ways }, () => rng.uniform(-bound, bound));
  const loss = (p: Float64Array, batch: number[]): number => {
    let total = 0;
    for (const i of batch) {
      const s = Array.from({ length: ways }, (_, c) => xs[i].reduce((acc, x, e) => acc + p[c * d + e] * x, p[ways * d + c]));
      const m = Math.max(...s);
      total += m + Math.log(s.reduce((acc, v) => acc + Math.exp(v - m), 0)) - s[ys[i]];
    }
    return total / batch.length;
  };
  sgdRef(params, xs.length, loss, rng, o);
  return { w: params.slice(0, ways * d), b: params.slice(ways * d) };
}
