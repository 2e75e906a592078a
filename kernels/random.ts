// Counter-based random numbers: value i depends only on (seed, i), so results do not depend on the
// launch shape and a run can be reproduced from its seed.
import { defineKernel, entry1d, linearIndex, type KernelDecl, type KernelSource, memoKernel } from './kernel.js';

// PCG-style hash of a 32-bit word (Jarzynski & Olano 2020), chained over (seed, stream, index).
const HASH = /* wgsl */ `
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
fn uniform01(seed: u32, stream: u32, i: u32) -> f32 {
  let h = pcg(pcg(pcg(seed) ^ stream) ^ i);
  // 24 random bits -> [0, 1) exactly representable in f32
  return f32(h >> 8u) * (1.0 / 16777216.0);
}
`;

const RANDOM: KernelDecl = {
  uniforms: [
    ['n', 'u32'],
    ['seed', 'u32'],
    ['p0', 'f32'],
    ['p1', 'f32'],
  ],
  outputs: [{ name: 'out', type: 'f32' }],
  inputs: [],
};

export type Distribution = 'uniform' | 'normal' | 'bernoulli';

/**
 * uniform: U[p0, p1); normal: N(p0, p1^2) by Box-Muller; bernoulli: 1 with probability p0,
 * else 0, scaled by p1 (dropout's keep mask is bernoulli(1 - p) scaled by 1 / (1 - p)).
 */
export function randomKernel(dist: Distribution): KernelSource {
  return memoKernel(`randomKernel ${JSON.stringify([dist])}`, () => buildRandomKernel(dist));
}

function buildRandomKernel(dist: Distribution): KernelSource {
  const body = {
    uniform: 'u.p0 + (u.p1 - u.p0) * uniform01(u.seed, 0u, i)',
    normal: `u.p0 + u.p1 * sqrt(-2.0 * log(1.0 - uniform01(u.seed, 0u, i))) * cos(6.283185307179586 * uniform01(u.seed, 1u, i))`,
    bernoulli: 'select(0.0, u.p1, uniform01(u.seed, 0u, i) < u.p0)',
  }[dist];
  const code = `${HASH}
${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n) { return; }
  out[i] = ${body};
}`;
  return defineKernel(`random_${dist}`, RANDOM, code);
}
