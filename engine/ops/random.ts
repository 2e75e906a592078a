// Seeded random tensors and dropout. The same seed gives the same values on every adapter.
import { grid1d } from '../../kernels/kernel.js';
import { randomKernel, type Distribution } from '../../kernels/random.js';
import { fmt, type Shape } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { mul } from './elementwise.js';
import { launch } from './launch.js';

function random(dist: Distribution, shape: Shape, seed: number, p0: number, p1: number): Tensor<'f32'> {
  const label = `${dist}${fmt(shape)}`;
  const out = empty(shape, 'f32', label);
  launch(randomKernel(dist), { n: out.size, seed: seed >>> 0, p0, p1 }, [out], [], grid1d(out.size), label);
  return out;
}

/** Uniform values in [low, high). */
export function rand(shape: Shape, seed: number, low = 0, high = 1): Tensor<'f32'> {
  return random('uniform', shape, seed, low, high);
}

/** Normal values with the given mean and standard deviation. */
export function randn(shape: Shape, seed: number, mean = 0, std = 1): Tensor<'f32'> {
  return random('normal', shape, seed, mean, std);
}

/** 1 with probability p, else 0, times `scale`. */
export function bernoulli(shape: Shape, seed: number, p: number, scale = 1): Tensor<'f32'> {
  return random('bernoulli', shape, seed, p, scale);
}

/**
 * Inverted dropout with rate p: zero each element with probability p, scale the rest by 1/(1-p).
 * The mask is drawn from `seed`, so the same seed drops the same elements.
 */
export function dropout(x: Tensor, p: number, seed: number, training = true): Tensor<'f32'> {
  if (p < 0 || p >= 1) throw new Error(`dropout: rate ${p} is outside [0, 1)`);
  if (!training || p === 0) return mul(x, 1);
  const mask = bernoulli(x.shape, seed, 1 - p, 1 / (1 - p));
  const y = mul(x, mask);
  mask.dispose();
  return y;
}
