// Fused flash attention against softmax(q k^T * scale) v built from matmul and softmax, whose
// backward comes from autograd and stores the [B, H, T, T] attention matrix.
import { backward, matmul, mul, noGrad, randn, scaledDotProductAttention, softmax, type Tensor } from '../../engine/index.js';
import { compareSteps, compareWithTfjs, toTf } from '../agree.js';
import type { BenchCase, Instance, Sizes, Variant } from '../case.js';
import type { Jax, JaxArray } from '../jaxjs/backends.js';
import { jaxPure } from '../jaxjs/ops.js';
import type { Tf, TfTensor } from '../tfjs/backends.js';
import { tfRun } from './common.js';

type Dims = { B: number; H: number; T: number; Dh: number };

const FULL: Dims[] = [
  { B: 32, H: 3, T: 65, Dh: 64 },
  { B: 8, H: 6, T: 197, Dh: 64 },
];
// Awkward T (not a multiple of any tile or subgroup) at a fraction of the work.
const REDUCED: Dims[] = [
  { B: 2, H: 3, T: 65, Dh: 64 },
  { B: 1, H: 2, T: 37, Dh: 64 },
];

type Attn = (q: Tensor, k: Tensor, v: Tensor) => Tensor;

const fusedAttention: Attn = (q, k, v) => scaledDotProductAttention(q, k, v);

/** [B, H, T, Dh] x 3 -> [B, H, T, Dh], the textbook composition. */
function composedAttention(q: Tensor, k: Tensor, v: Tensor): Tensor {
  const scale = 1 / Math.sqrt(q.shape[3]);
  const p = softmax(mul(matmul(q, k, { transB: true }), scale), -1);
  return matmul(p, v);
}

/** The same composition in tfjs: [B, H, T, Dh] x 3 -> [B, H, T, Dh]. */
function tfAttention(tf: Tf, [q, k, v]: TfTensor[]): TfTensor {
  const scale = 1 / Math.sqrt(q.shape[3]!);
  return tf.matMul(tf.softmax(tf.mul(tf.matMul(q, k, false, true), scale)), v);
}

/** The same composition in jax-js (consumes q, k, v). */
function jaxAttention(jax: Jax, [q, k, v]: JaxArray[]): JaxArray {
  const { numpy: np, nn } = jax;
  const scale = 1 / Math.sqrt(q.shape[3]);
  return np.matmul(nn.softmax(np.matmul(q, k.transpose([0, 1, 3, 2])).mul(scale), -1), v);
}

/** Forward only (no autograd), or forward and backward for a fixed random output gradient. */
function variant(attn: Attn, q: Tensor, k: Tensor, v: Tensor, g: Tensor<'f32'>, withBackward: boolean): Variant {
  return {
    step: () => {
      if (!withBackward) return [noGrad(() => attn(q, k, v))];
      const out = attn(q, k, v);
      backward(out, g);
      const grads = [q, k, v].map((x) => {
        const dx = x.grad!;
        x.grad = null;
        return dx;
      });
      return [out, ...grads];
    },
  };
}

function attentionCase(d: Dims, withBackward: boolean, seed: number): BenchCase {
  const { B, H, T, Dh } = d;
  const fwdFlops = 4 * B * H * T * T * Dh;
  return {
    suite: 'attention',
    name: `${withBackward ? 'fwd+bwd' : 'fwd'} B=${B} H=${H} T=${T} Dh=${Dh}`,
    // Two T x T x Dh products forward, four backward (dV, dP, dQ, dK); recomputation not counted.
    work: { flops: withBackward ? 3 * fwdFlops : fwdFlops },
    unfused: 'softmax(matmul(q, k^T) * scale) -> matmul(., v), autograd backward',
    tfjs: 'tf.matMul(tf.softmax(tf.matMul(q, k, false, true) * scale), v), tf.valueAndGrads (tfjs has no fused attention)',
    jax: "jit(np.matmul(nn.softmax(np.matmul(q, kᵀ) * scale), v)), vjp for the backward (the same composition; jax-js' nn.dotProductAttention is not used)",
    quick: T === 65 && withBackward,
    setup(): Instance {
      const shape = [B, H, T, Dh];
      const [q, k, v] = [0, 1, 2].map((i) => randn(shape, seed + i));
      for (const x of [q, k, v]) x.requiresGrad = withBackward;
      const g = randn(shape, seed + 3);
      const fused = variant(fusedAttention, q, k, v, g, withBackward);
      const unfused = variant(composedAttention, q, k, v, g, withBackward);
      const names = withBackward ? ['out', 'dq', 'dk', 'dv'] : ['out'];
      return {
        fused,
        unfused,
        agree: () => compareSteps(fused, unfused, names, 1e-4),
        async tfjs(tf) {
          const xs: TfTensor[] = [];
          for (const x of [q, k, v, g]) xs.push(await toTf(tf, x));
          const step = (): TfTensor[] => tfRun(tf, (a) => tfAttention(tf, a), xs.slice(0, 3), xs[3], withBackward);
          return { step, agree: () => compareWithTfjs(tf, fused, step, names, 1e-4), dispose: () => tf.dispose(xs) };
        },
        jax: (env, device) => jaxPure(env, device, { f: jaxAttention, inputs: [q, k, v], dy: g, withBackward, ours: fused, names, tolerance: 1e-4 }),
        dispose: () => [q, k, v, g].forEach((t) => t.dispose()),
      };
    },
  };
}

export function attentionCases(sizes: Sizes): BenchCase[] {
  const dims = sizes === 'full' ? FULL : REDUCED;
  return dims.flatMap((d, i) => [attentionCase(d, false, 100 + 10 * i), attentionCase(d, true, 100 + 10 * i)]);
}
