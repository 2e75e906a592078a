// Exact (erf) GELU over the MLP's hidden activations [B*T, 4D], forward and backward.
import { gelu } from '../../engine/index.js';
import type { BenchCase, Sizes } from '../case.js';
import { pureCase } from './common.js';
import { REDUCED_SHAPES, STEP_SHAPES } from './shapes.js';

export function geluCases(sizes: Sizes): BenchCase[] {
  const shapes = sizes === 'full' ? STEP_SHAPES : REDUCED_SHAPES;
  return shapes.map((s, i) => {
    const M = s.B * s.T;
    const H = 4 * s.D;
    return pureCase({
      suite: 'gelu',
      name: `fwd+bwd ${s.config} [${M}, ${H}]`,
      // Forward reads x, writes y; backward reads x and dy, writes dx.
      work: { bytes: 5 * M * H * 4 },
      quick: s.config === 'vit-tiny-32px',
      shapes: [[M, H]],
      seed: 800 + 10 * i,
      withBackward: true,
      outShape: [M, H],
      ours: ([x]) => gelu(x),
      tfjs: {
        what: '0.5 * x * (1 + erf(x / sqrt 2)), tf.valueAndGrads (tfjs-core has no gelu op)',
        f: (tf, [x]) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)),
      },
      names: ['y', 'dx'],
      tolerance: 1e-5,
    });
  });
}
