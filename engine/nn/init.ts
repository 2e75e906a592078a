// Parameter initialisers with PyTorch/timm semantics, drawn on the host from the build's generator.
import type { Rng } from '../rng.js';
import { numel, type Shape } from '../shape.js';
import type { ParamInit } from './module.js';

/** Normal(mean, std) truncated to [a, b] by redrawing (timm's trunc_normal_, absolute bounds). */
export function truncNormal(std: number, a = -2, b = 2, mean = 0): ParamInit {
  return (shape: Shape, rng: Rng) => {
    const out = new Float32Array(numel(shape));
    for (let i = 0; i < out.length; i++) {
      let v: number;
      do v = rng.normal(mean, std);
      while (v < a || v > b);
      out[i] = v;
    }
    return out;
  };
}

/** Uniform in [-bound, bound]. */
export function uniform(bound: number): ParamInit {
  return (shape: Shape, rng: Rng) => Float32Array.from({ length: numel(shape) }, () => rng.uniform(-bound, bound));
}

/** PyTorch's default Linear/Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases. */
export function kaimingUniformDefault(fanIn: number): ParamInit {
  return uniform(1 / Math.sqrt(fanIn));
}
