// The op tests the browser runs (in the page, through the same harness and tolerances as in Node):
// forward against the float64 references of test/ref, backward against finite differences, on
// awkward shapes that are not multiples of any tile. A subset: the kernels of a ViT training step.
import {
  crossEntropy,
  gelu,
  layerNorm,
  linearGelu,
  logSoftmax,
  matmul,
  scaledDotProductAttention,
  softmax,
  sum,
  l2Normalize,
  cosineArgmax,
  fromArray,
} from '../../engine/index.js';
import { awkwardDim, checkOp, randArray, randInt, rng, type F64 } from '../helpers/check.js';
import { attentionRef } from '../ref/attention.js';
import { gelu as geluRef, map, reduceAxes } from '../ref/basic.js';
import { cosineArgmaxRef } from '../ref/distill.js';
import { linearRef, matmulRef } from '../ref/matmul.js';
import * as norm from '../ref/norm.js';

export interface OpCaseResult {
  name: string;
  ok: boolean;
  error?: string;
  ms: number;
}

const f32 = (n: number, r: () => number, amp = 1): F64 => randArray(n, r, -amp, amp).map(Math.fround);

/** Mean cross-entropy of rows of logits against labels, in float64. */
function crossEntropyRef(x: F64, labels: number[], c: number): F64 {
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, x[i * c + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(x[i * c + j] - m);
    total -= x[i * c + labels[i]] - m - Math.log(s);
  }
  return Float64Array.of(total / labels.length);
}

export const OP_CASES: [string, () => Promise<void>][] = [
  ...(
    [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const
  ).map(([ta, tb]): [string, () => Promise<void>] => [
    `matmul ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} on awkward shapes`,
    async () => {
      for (const seed of [1, 2]) {
        const r = rng(seed * 31 + (ta ? 2 : 0) + (tb ? 1 : 0));
        const [M, N, K] = [awkwardDim(r, 37), awkwardDim(r, 37), awkwardDim(r, 37)];
        const sa = ta ? [K, M] : [M, K];
        const sb = tb ? [N, K] : [K, N];
        await checkOp({
          name: `matmul [${sa}] x [${sb}]`,
          shapes: [sa, sb],
          gpu: ([a, b]) => matmul(a, b, { transA: ta, transB: tb }),
          ref: ([a, b]) => matmulRef(a, sa, b, sb, ta, tb).data,
          seed,
        });
      }
    },
  ]),
  [
    'matmul at the omniglot patch embedding (K = 49, A not vec4-aligned) and a ViT MLP',
    async () => {
      for (const [M, N, K] of [
        [34, 64, 49],
        [68, 256, 64],
      ]) {
        await checkOp({
          name: `matmul [${M}, ${K}] x [${K}, ${N}]`,
          shapes: [
            [M, K],
            [K, N],
          ],
          gpu: ([a, b]) => matmul(a, b),
          ref: ([a, b]) => matmulRef(a, [M, K], b, [K, N]).data,
          grad: [false, false],
        });
      }
    },
  ],
  [
    'linear + GELU (fused epilogue)',
    async () => {
      const [B, I, O] = [13, 21, 19];
      await checkOp({
        name: 'linearGelu',
        shapes: [[B, I], [O, I], [O]],
        gpu: ([x, w, b]) => linearGelu(x, w, b),
        ref: ([x, w, b]) => linearRef(x, [B, I], w, [O, I], b, true),
        seed: 3,
      });
    },
  ],
  [
    'layerNorm with weight and bias',
    async () => {
      const d = 37;
      await checkOp({
        name: 'layerNorm',
        shapes: [[5, 3, d], [d], [d]],
        gpu: ([x, w, b]) => layerNorm(x, w, b),
        ref: ([x, w, b]) => norm.layerNorm(x, d, w, b, 1e-5),
        init: (k, n, r) => randArray(n, r, k === 0 ? 1 : -1.5, k === 0 ? 4 : 1.5),
      });
    },
  ],
  [
    'softmax and logSoftmax over the last axis',
    async () => {
      const d = 29;
      await checkOp({ name: 'softmax', shapes: [[7, d]], gpu: ([x]) => softmax(x, -1), ref: ([x]) => norm.softmax(x, d), init: (_k, n, r) => randArray(n, r, -3, 3) });
      await checkOp({ name: 'logSoftmax', shapes: [[7, d]], gpu: ([x]) => logSoftmax(x, -1), ref: ([x]) => norm.logSoftmax(x, d), init: (_k, n, r) => randArray(n, r, -3, 3) });
    },
  ],
  [
    'l2Normalize over the last axis',
    async () => {
      const shape = [6, 23];
      await checkOp({ name: 'l2Normalize', shapes: [shape], gpu: ([x]) => l2Normalize(x), ref: ([x]) => norm.l2Normalize(x, shape, 1, 1e-12) });
    },
  ],
  [
    'GELU and sum',
    async () => {
      await checkOp({ name: 'gelu', shapes: [[11, 13]], gpu: ([x]) => gelu(x), ref: ([x]) => map(x, geluRef), init: (_k, n, r) => randArray(n, r, -4, 4) });
      await checkOp({ name: 'sum over axis 1', shapes: [[5, 17, 3]], gpu: ([x]) => sum(x, 1), ref: ([x]) => reduceAxes(x, [5, 17, 3], [1], 0, (a, v) => a + v) });
    },
  ],
  [
    'fused attention (forward and q, k, v gradients)',
    async () => {
      const d = { B: 2, H: 2, Tq: 17, Tk: 17, Dh: 32 };
      const shape = [d.B, d.H, d.Tq, d.Dh];
      await checkOp({
        name: 'attention',
        shapes: [shape, shape, shape],
        gpu: ([q, k, v]) => scaledDotProductAttention(q, k, v),
        ref: ([q, k, v]) => attentionRef(q, k, v, d),
        init: (_k, n, r) => f32(n, r),
        seed: 7,
      });
    },
  ],
  [
    'cross-entropy',
    async () => {
      const [n, c] = [13, 37];
      const r = rng(n * 31 + c);
      const labels = Array.from({ length: n }, () => randInt(r, 0, c - 1));
      await checkOp({
        name: 'crossEntropy',
        shapes: [[n, c]],
        gpu: ([x]) => crossEntropy(x, labels),
        ref: ([x]) => crossEntropyRef(x, labels, c),
        init: (_k, len, rr) => randArray(len, rr, -4, 4),
      });
    },
  ],
  [
    'cosine-similarity argmax (patch matching)',
    async () => {
      const [G, N, M, D] = [3, 16, 16, 64];
      const r = rng(5);
      const a = f32(G * N * D, r);
      const b = f32(G * M * D, r);
      const got = await cosineArgmax(fromArray(a, [G, N, D]), fromArray(b, [G, M, D])).toArray();
      const ref = cosineArgmaxRef(a, b, G, N, M, D);
      for (let i = 0; i < G * N; i++) {
        if (ref.margin[i] >= 1e-5 && got[i] !== ref.index[i]) throw new Error(`cosineArgmax: row ${i} matched ${got[i]}, the float64 reference ${ref.index[i]}`);
      }
    },
  ],
];

/** Run every case, each timed, none stopping the others. */
export async function runOpCases(): Promise<OpCaseResult[]> {
  const out: OpCaseResult[] = [];
  for (const [name, run] of OP_CASES) {
    const t0 = performance.now();
    try {
      await run();
      out.push({ name, ok: true, ms: performance.now() - t0 });
    } catch (e) {
      out.push({ name, ok: false, error: (e as Error).message, ms: performance.now() - t0 });
    }
  }
  return out;
}
