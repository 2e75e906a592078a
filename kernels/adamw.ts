// AdamW (torch.optim.AdamW, single-tensor path) over a whole parameter arena in one dispatch. The
// per-parameter factors that depend on the step count are computed in float64 on the host (1 − β2^t
// in f32 loses ~1e-4 relative at t = 1) and arrive in a small table; inactive parameters are skipped.
import { CHUNK_INDEX, CHUNK_WG, CHUNK_WGSL } from './grad-norm.js';
import { defineKernel, type KernelSource, memoKernel } from './kernel.js';

/** f32 words per parameter in the step table: decay factor, step size, √(1 − β2^t), active (0/1). */
export const ADAMW_TABLE_WORDS = 4;

/**
 * Uniforms: chunks (u32), beta1, beta2, 1 − beta1, 1 − beta2, eps (f32).
 * Bindings: 1 param, 2 exp_avg, 3 exp_avg_sq (read-write), 4 grad, 5 chunk table, 6 step table.
 */
export function adamwKernel(): KernelSource {
  return memoKernel(`adamwKernel ${JSON.stringify([])}`, () => buildAdamwKernel());
}

function buildAdamwKernel(): KernelSource {
  const decl = {
    uniforms: [
      ['chunks', 'u32'],
      ['beta1', 'f32'],
      ['beta2', 'f32'],
      ['oneMinusBeta1', 'f32'],
      ['oneMinusBeta2', 'f32'],
      ['eps', 'f32'],
    ],
    outputs: [
      { name: 'param', type: 'f32' },
      { name: 'expAvg', type: 'f32' },
      { name: 'expAvgSq', type: 'f32' },
    ],
    inputs: [
      { name: 'grad', type: 'f32' },
      { name: 'chunks', type: 'Chunk', dtype: 'u32' },
      { name: 'table', type: 'vec4f' },
    ],
  } as const;
  const code = /* wgsl */ `${CHUNK_WGSL}
@compute @workgroup_size(${CHUNK_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3u) {
  let c = ${CHUNK_INDEX};
  if (c >= u.chunks) { return; }
  let ch = chunks[c];
  // x: 1 − lr·wd (1 outside the decay group), y: lr / (1 − β1^t), z: √(1 − β2^t), w: active.
  let t = table[ch.param];
  if (t.w == 0.0) { return; }
  for (var i = ch.start + lid; i < ch.end; i += ${CHUNK_WG}u) {
    let g = grad[i];
    let m = expAvg[i] * u.beta1 + u.oneMinusBeta1 * g;
    let v = expAvgSq[i] * u.beta2 + u.oneMinusBeta2 * g * g;
    expAvg[i] = m;
    expAvgSq[i] = v;
    let denom = sqrt(v) / t.z + u.eps;
    param[i] = param[i] * t.x - t.y * (m / denom);
  }
}`;
  return defineKernel('adamw', decl, code);
}
