// Splitting a fused projection into heads and merging heads back, in one pass each: the attention
// block's [B, T, S·H·Dh] (S = 3 for q, k, v) <-> S tensors [B, H, T, Dh]. Composed from permute and
// narrow this was a strided copy of everything plus one copy per part forward, and zero fills, copies
// and adds backward (20 dispatches, 12 % of a ViT-Tiny step on lavapipe, bench/NOTES.md); here each
// thread moves one vec4 of every part, with the head geometry compiled in so that no index needs a
// division by a runtime value (a per-lane loop of scalar divides on lavapipe).
import { defineKernel, type BindingDecl, type KernelSource, memoKernel } from './kernel.js';

/** Threads per workgroup along the feature axis. */
export const HEADS_WG = 64;

/**
 * `split`: parts p = 0..S-1 of x [B, T, S·H·Dh] to out_p [B, H, T, Dh].
 * `merge`: the reverse; a part absent from `present` is written as zeros (a missing gradient).
 * Bindings: split: out0..out{S-1}, x; merge: out, then the present parts in order.
 * Grid: (ceil(H·Dh/V / HEADS_WG), T, B) with V = 4 when Dh % 4 == 0, else 1. Uniform: T.
 */
export function headsKernel(dir: 'split' | 'merge', parts: number, heads: number, headDim: number, present: readonly boolean[] = []): KernelSource {
  return memoKernel(`headsKernel ${JSON.stringify([dir, parts, heads, headDim, present])}`, () => buildHeadsKernel(dir, parts, heads, headDim, present));
}

function buildHeadsKernel(dir: 'split' | 'merge', parts: number, heads: number, headDim: number, present: readonly boolean[] = []): KernelSource {
  const V = headDim % 4 === 0 ? 4 : 1;
  const ty = V === 4 ? 'vec4f' : 'f32';
  const dv = headDim / V; // vectors per head
  const fv = heads * dv; // vectors per part of one token
  const has = (p: number): boolean => dir === 'split' || (present[p] ?? true);
  const fused: BindingDecl[] = [{ name: 'x', type: ty }];
  const split: BindingDecl[] = [...Array(parts).keys()].filter(has).map((p) => ({ name: `out${p}`, type: ty }));
  const [outputs, inputs] = dir === 'split' ? [split, fused] : [fused, split];
  const moves: string[] = [];
  for (let p = 0; p < parts; p++) {
    const fused = `tok + ${p * fv}u`;
    if (dir === 'split') moves.push(`out${p}[head] = x[${fused}];`);
    else moves.push(`x[${fused}] = ${has(p) ? `out${p}[head]` : `${ty}(0.0)`};`);
  }
  const code = `
@compute @workgroup_size(${HEADS_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  if (j >= ${fv}u) { return; }
  let t = gid.y;
  let b = gid.z;
  let h = j / ${dv}u;
  let e = j % ${dv}u;
  // Vector offsets: in the fused token row, and in the part's [B, H, T, Dh] layout.
  let tok = (b * u.T + t) * ${parts * fv}u + j;
  let head = ((b * ${heads}u + h) * u.T + t) * ${dv}u + e;
  ${moves.join('\n  ')}
}`;
  const mask = dir === 'merge' ? `_${present.map((x) => (x ? 1 : 0)).join('')}` : '';
  return defineKernel(`heads_${dir}_${parts}x${heads}x${headDim}${mask}`, { uniforms: [['T', 'u32']], outputs, inputs }, code);
}
