// LayerNorm over [B*T, D] with weight and bias (eps 1e-6 as the ViT), forward and backward.
import { layerNorm } from '../../engine/index.js';
import type { BenchCase, Sizes } from '../case.js';
import { pureCase } from './common.js';
import { REDUCED_SHAPES, STEP_SHAPES } from './shapes.js';

const EPS = 1e-6;

export function layerNormCases(sizes: Sizes): BenchCase[] {
  const shapes = sizes === 'full' ? STEP_SHAPES : REDUCED_SHAPES;
  return shapes.map((s, i) => {
    const M = s.B * s.T;
    return pureCase({
      suite: 'layerNorm',
      name: `fwd+bwd ${s.config} [${M}, ${s.D}]`,
      // Forward reads x, writes y; backward reads x and dy, writes dx (weight, bias and stats are small).
      work: { bytes: 5 * M * s.D * 4 },
      quick: s.config === 'vit-tiny-32px',
      shapes: [[M, s.D], [s.D], [s.D]],
      seed: 700 + 10 * i,
      withBackward: true,
      outShape: [M, s.D],
      ours: ([x, w, b]) => layerNorm(x, w, b, EPS),
      tfjs: {
        what: 'moments -> (x - mean) * rsqrt(var + eps) * w + b, tf.valueAndGrads',
        f: (tf, [x, w, b]) => {
          const { mean, variance } = tf.moments(x, -1, true);
          return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, EPS))), w), b);
        },
      },
      names: ['y', 'dx', 'dweight', 'dbias'],
      tolerance: 1e-4,
    });
  });
}
