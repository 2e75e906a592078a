// Fused cosine-similarity argmax (SMKD patch matching) against l2Normalize + batched matmul, then
// the lowest index where a similarity equals its row maximum, all from core ops.
import { cast, compare, cosineArgmax, fill, fromArray, l2Normalize, matmul, max, min, noGrad, randn, tidy, where, type Tensor } from '../../engine/index.js';
import { toTf } from '../agree.js';
import type { Agreement, BenchCase, Instance, Sizes, Variant } from '../case.js';
import type { Tf, TfTensor } from '../tfjs/backends.js';

type Dims = { G: number; N: number; M: number; D: number };

const FULL: Dims[] = [
  { G: 64, N: 64, M: 64, D: 64 },
  { G: 16, N: 196, M: 196, D: 384 },
];
const REDUCED: Dims[] = [
  { G: 3, N: 65, M: 63, D: 64 },
  { G: 2, N: 19, M: 196, D: 383 },
];

// Two picks whose float64 cosines differ by less than this are a tie at f32 precision.
const TIE = 1e-5;

/** a [G, N, D], b [G, M, D] -> i32 [G, N]; `iota` holds 0..M-1 and `none` the scalar M. */
function composedArgmax(a: Tensor, b: Tensor, iota: Tensor, none: Tensor): Tensor {
  const sim = matmul(l2Normalize(a, -1), l2Normalize(b, -1), { transB: true });
  const hit = compare('eq', sim, max(sim, -1, true));
  return cast(min(where(hit, iota, none), -1), 'i32');
}

/** The same in tfjs: a [G, N, D], b [G, M, D] -> int32 [G, N] (tf.argMax picks the first maximum). */
function tfArgmax(tf: Tf, a: TfTensor, b: TfTensor): TfTensor {
  const unit = (x: TfTensor): TfTensor => tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), -1, true), 1e-24)));
  return tf.argMax(tf.matMul(unit(a), unit(b), false, true), -1);
}

/** Both picks must be the float64 best up to f32 ties; how many agree exactly goes in the detail. */
function checkPicks(d: Dims, a: Float32Array, b: Float32Array, fused: Int32Array, unfused: Int32Array): Agreement {
  const { G, N, M, D } = d;
  const bNorm = new Float64Array(G * M);
  for (let r = 0; r < G * M; r++) {
    let s = 0;
    for (let k = 0; k < D; k++) s += b[r * D + k] ** 2;
    bNorm[r] = Math.sqrt(s);
  }
  let worst = 0;
  let same = 0;
  const cos = new Float64Array(M);
  for (let g = 0; g < G; g++) {
    for (let n = 0; n < N; n++) {
      const ai = (g * N + n) * D;
      let best = -Infinity;
      for (let m = 0; m < M; m++) {
        const bi = (g * M + m) * D;
        let dot = 0;
        for (let k = 0; k < D; k++) dot += a[ai + k] * b[bi + k];
        cos[m] = dot / bNorm[g * M + m];
        best = Math.max(best, cos[m]);
      }
      let aNorm = 0;
      for (let k = 0; k < D; k++) aNorm += a[ai + k] ** 2;
      const scale = Math.sqrt(aNorm);
      for (const pick of [fused[g * N + n], unfused[g * N + n]]) {
        const gap = pick >= 0 && pick < M ? (best - cos[pick]) / scale : Infinity;
        worst = Math.max(worst, gap);
      }
      if (fused[g * N + n] === unfused[g * N + n]) same++;
    }
  }
  return { ok: worst <= TIE, error: worst, tolerance: TIE, detail: `${same}/${G * N} indices identical; error = worst cosine gap to the float64 best` };
}

function cosineCase(d: Dims, seed: number): BenchCase {
  const { G, N, M, D } = d;
  return {
    suite: 'cosineArgmax',
    name: `G=${G} N=${N} M=${M} D=${D}`,
    work: { flops: 2 * G * N * M * D },
    unfused: 'matmul(l2Normalize(a), l2Normalize(b)^T) -> eq(., max) -> min(where(., iota, M))',
    tfjs: 'tf.argMax(tf.matMul(a * rsqrt(sum(a²)), b * rsqrt(sum(b²)), false, true), -1)',
    quick: G === 64,
    setup(): Instance {
      const a = randn([G, N, D], seed);
      const b = randn([G, M, D], seed + 1);
      const iota = fromArray(
        Array.from({ length: M }, (_, i) => i),
        [M],
      );
      const none = fill([], M);
      const fused: Variant = { step: () => [cosineArgmax(a, b)] };
      const unfused: Variant = { step: () => [noGrad(() => composedArgmax(a, b, iota, none))] };
      return {
        fused,
        unfused,
        async agree() {
          const [f] = tidy(() => fused.step());
          const [u] = tidy(() => unfused.step());
          try {
            const picks = [await f.toArray(), await u.toArray()] as Int32Array[];
            return checkPicks(d, await a.toArray(), await b.toArray(), picks[0], picks[1]);
          } finally {
            f.dispose();
            u.dispose();
          }
        },
        async tfjs(tf) {
          const xs = [await toTf(tf, a), await toTf(tf, b)];
          const step = (): TfTensor[] => [tfArgmax(tf, xs[0], xs[1])];
          return {
            step,
            async agree() {
              const [f] = tidy(() => fused.step());
              const t = tf.tidy(() => step()[0]);
              try {
                return checkPicks(d, await a.toArray(), await b.toArray(), (await f.toArray()) as Int32Array, Int32Array.from(await t.data()));
              } finally {
                f.dispose();
                t.dispose();
              }
            },
            dispose: () => tf.dispose(xs),
          };
        },
        dispose: () => [a, b, iota, none].forEach((t) => t.dispose()),
      };
    },
  };
}

export function cosineArgmaxCases(sizes: Sizes): BenchCase[] {
  return (sizes === 'full' ? FULL : REDUCED).map((d, i) => cosineCase(d, 300 + 10 * i));
}
