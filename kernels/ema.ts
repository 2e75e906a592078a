// In-place blend of two flat f32 ranges, out = a·out + b·x: the teacher EMA (a = m, b = 1 − m), and
// with (0, 1) a copy, with (1, 1) a gradient accumulation, so all arena-wide moves share one kernel.
import { defineKernel, entry1d, linearIndex, type KernelSource, memoKernel } from './kernel.js';

/**
 * `width` 4 reads vec4s (n counts vec4s; for sizes that are multiples of 4, e.g. whole arenas), 1 any range.
 * Uniforms: n (u32), a (f32), b (f32). Bindings: 1 out (read-write), 2 x.
 */
export function emaKernel(width: 1 | 4): KernelSource {
  return memoKernel(`emaKernel ${JSON.stringify([width])}`, () => buildEmaKernel(width));
}

function buildEmaKernel(width: 1 | 4): KernelSource {
  const t = width === 4 ? 'vec4f' : 'f32';
  const decl = {
    uniforms: [
      ['n', 'u32'],
      ['a', 'f32'],
      ['b', 'f32'],
    ],
    outputs: [{ name: 'out', type: t }],
    inputs: [{ name: 'x', type: t }],
  } as const;
  const code = /* wgsl */ `
${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n) { return; }
  // a = 0 must overwrite: 0 * NaN left in uninitialised memory would stay NaN.
  let kept = select(u.a * out[i], ${t}(0.0), u.a == 0.0);
  out[i] = kept + u.b * x[i];
}`;
  return defineKernel(`ema_${width}`, decl, code);
}
