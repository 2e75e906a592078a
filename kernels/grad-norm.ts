// Per-parameter gradient norms and clipping over a whole gradient arena, as a segmented reduction in
// two dispatches: squared sums per chunk, then each chunk's workgroup combines its parameter's
// partials (in a fixed order, so every chunk of a parameter gets the same norm) and scales.
import { defineKernel, treeReduce, type BindingDecl, type KernelSource, memoKernel } from './kernel.js';

/** Threads of a chunk workgroup (also used by the AdamW kernel). */
export const CHUNK_WG = 256;

/** u32 words per entry of an arena's chunk table. */
export const CHUNK_WORDS = 5;

/**
 * One entry per chunk: a contiguous range [start, end) of one parameter's elements (absolute arena
 * indices), and [first, stop) the chunk indices of that parameter. A chunk workgroup never spans two
 * parameters, so per-parameter state is read once per workgroup.
 */
export const CHUNK_WGSL = /* wgsl */ `
struct Chunk { param: u32, start: u32, end: u32, first: u32, stop: u32 }`;

/** WGSL index of the chunk a workgroup of a `grid1d(chunks * CHUNK_WG)` launch handles. */
export const CHUNK_INDEX = 'wid.x + wid.y * nwg.x';

const f32 = (name: string): BindingDecl => ({ name, type: 'f32' });
/** The inputs after the data: the arena's chunk table (u32 words) and one u32 has-gradient flag per parameter. */
const TABLES: BindingDecl[] = [
  { name: 'chunks', type: 'Chunk', dtype: 'u32' },
  { name: 'hasGrad', type: 'u32' },
];

/**
 * Threads of a norm or clip workgroup (one per chunk, like AdamW's, but with a tree reduction): 64, not
 * CHUNK_WG, because on lavapipe every level of the tree is a barrier that switches between all the
 * workgroup's SIMD rows; measured in the omniglot step (about 70 chunks) 3.6 ms for both dispatches at 256.
 */
export const NORM_WG = 64;

const ENTRY = `@compute @workgroup_size(${NORM_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3u)`;

// Sum of one value per thread, returned to every thread; must be called in uniform control flow.
const WG_SUM = /* wgsl */ `
var<workgroup> part: array<f32, ${NORM_WG}>;
fn wgSum(v: f32, lid: u32) -> f32 {
  part[lid] = v;
  workgroupBarrier();
  ${treeReduce({ buf: 'part', slot: 'lid', lane: 'lid', lanes: NORM_WG, combine: (a, b) => `${a} + ${b}` })}
  let r = part[0];
  workgroupBarrier();
  return r;
}`;

/**
 * Dispatch 1: partial[c] = sum of grad² over chunk c (0 for parameters without a gradient).
 * Uniforms: chunks (u32). Bindings: 1 partial, 2 grad, 3 chunk table, 4 hasGrad (u32 per parameter).
 */
export function gradSqPartialsKernel(): KernelSource {
  return memoKernel(`gradSqPartialsKernel ${JSON.stringify([])}`, () => buildGradSqPartialsKernel());
}

function buildGradSqPartialsKernel(): KernelSource {
  const code = /* wgsl */ `${CHUNK_WGSL}
${WG_SUM}
${ENTRY} {
  let c = ${CHUNK_INDEX};
  let valid = c < u.chunks;
  let ch = chunks[min(c, u.chunks - 1u)];
  var acc = 0.0;
  if (valid && hasGrad[ch.param] != 0u) {
    for (var i = ch.start + lid; i < ch.end; i += ${NORM_WG}u) {
      let g = grad[i];
      acc += g * g;
    }
  }
  let total = wgSum(acc, lid);
  if (valid && lid == 0u) { partial[c] = total; }
}`;
  return defineKernel('grad_sq_partials', { uniforms: [['chunks', 'u32']], outputs: [f32('partial')], inputs: [f32('grad'), ...TABLES] }, code);
}

/**
 * How the clip factor is chosen: per parameter tensor (DINO's clip_gradients: each tensor scaled by
 * clip/(‖g‖ + 1e-6) when that is below 1), or from the global norm (torch.nn.utils.clip_grad_norm_).
 */
export type ClipMode = 'perTensor' | 'global';

/**
 * Dispatch 2: combine the partials and scale the gradients in place. Writes, per parameter with a
 * gradient, norms[p] = ‖g_p‖ and factors[p] = the factor applied (1 when not clipped or no gradient),
 * and total[0] = the global norm before clipping.
 * Uniforms: chunks (u32), maxNorm (f32). Bindings: 1 grad, 2 norms, 3 factors, 4 total, 5 partial,
 * 6 chunk table, 7 hasGrad.
 */
export function clipGradKernel(mode: ClipMode): KernelSource {
  return memoKernel(`clipGradKernel ${JSON.stringify([mode])}`, () => buildClipGradKernel(mode));
}

function buildClipGradKernel(mode: ClipMode): KernelSource {
  const global = mode === 'global';
  const code = /* wgsl */ `${CHUNK_WGSL}
${WG_SUM}
fn sumPartials(lo: u32, hi: u32, lid: u32) -> f32 {
  var acc = 0.0;
  for (var k = lo + lid; k < hi; k += ${NORM_WG}u) { acc += partial[k]; }
  return wgSum(acc, lid);
}
${ENTRY} {
  let c = ${CHUNK_INDEX};
  let valid = c < u.chunks;
  let ch = chunks[min(c, u.chunks - 1u)];
  let withGrad = valid && hasGrad[ch.param] != 0u;
  let norm = sqrt(sumPartials(ch.first, ch.stop, lid));
  ${
    global
      ? `// Every workgroup needs the global norm, so each sums all partials (few: chunks are large).
  let globalNorm = sqrt(sumPartials(0u, u.chunks, lid));
  let scale = min(u.maxNorm / (globalNorm + 1e-6), 1.0);`
      : `var globalNorm = 0.0;
  if (c == 0u) { globalNorm = sqrt(sumPartials(0u, u.chunks, lid)); }
  let coef = u.maxNorm / (norm + 1e-6);
  let scale = select(1.0, coef, coef < 1.0);`
  }
  if (withGrad && scale != 1.0) {
    for (var i = ch.start + lid; i < ch.end; i += ${NORM_WG}u) { grad[i] *= scale; }
  }
  if (valid && lid == 0u && c == ch.first) {
    norms[ch.param] = select(0.0, norm, withGrad);
    factors[ch.param] = select(1.0, scale, withGrad);
  }
  if (c == 0u && lid == 0u) { total[0] = globalNorm; }
}`;
  const decl = {
    uniforms: [
      ['chunks', 'u32'],
      ['maxNorm', 'f32'],
    ] as const,
    outputs: ['grad', 'norms', 'factors', 'total'].map(f32),
    inputs: [f32('partial'), ...TABLES],
  };
  return defineKernel(`clip_grad_${mode}`, decl, code);
}
