// Matmul at the step's shapes, as nn.Linear runs it: x [B*T, K] times W [N, K] transposed, for the
// qkv projection (K = D, N = 3D), the MLP's fc1 (D -> 4D) and fc2 (4D -> D).
import { matmul } from '../../engine/index.js';
import type { BenchCase, Sizes } from '../case.js';
import { pureCase } from './common.js';
import { REDUCED_SHAPES, STEP_SHAPES } from './shapes.js';

const LAYERS = [
  { layer: 'qkv', k: 1, n: 3 },
  { layer: 'fc1', k: 1, n: 4 },
  { layer: 'fc2', k: 4, n: 1 },
];

export function matmulCases(sizes: Sizes): BenchCase[] {
  const shapes = sizes === 'full' ? STEP_SHAPES : REDUCED_SHAPES;
  return shapes.flatMap((s, si) =>
    LAYERS.map(({ layer, k, n }, li) => {
      const M = s.B * s.T;
      const K = k * s.D;
      const N = n * s.D;
      return pureCase({
        suite: 'matmul',
        name: `${s.config} ${layer} [${M}, ${K}] x [${N}, ${K}]^T`,
        work: { flops: 2 * M * K * N },
        quick: s.config === 'tiny' || (s.config === 'vit-tiny-32px' && layer === 'qkv'),
        shapes: [
          [M, K],
          [N, K],
        ],
        seed: 600 + 10 * (3 * si + li),
        withBackward: false,
        outShape: [M, N],
        ours: ([x, w]) => matmul(x, w, { transB: true }),
        tfjs: { what: 'tf.matMul(x, w, false, true)', f: (tf, [x, w]) => tf.matMul(x, w, false, true) },
        jax: { what: 'jit(np.matmul(x, w.transpose()))', f: (jax, [x, w]) => jax.numpy.matmul(x, w.transpose()) },
        names: ['y'],
        tolerance: 1e-5,
      });
    }),
  );
}
