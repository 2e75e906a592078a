// splitHeads / mergeHeads: the attention block's fused [B, T, S·H·Dh] projection to S per-head
// tensors [B, H, T, Dh] and back, one dispatch each way (kernels/heads.ts says why).
import { HEADS_WG, headsKernel } from '../../kernels/heads.js';
import { MAX_GROUPS } from '../../kernels/kernel.js';
import { recordOp } from '../autograd.js';
import { fmt } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { assertFloat, launch, opLabel } from './launch.js';

function grid(label: string, B: number, T: number, H: number, Dh: number): [number, number, number] {
  const groups: [number, number, number] = [Math.ceil((H * Dh) / (Dh % 4 === 0 ? 4 : 1) / HEADS_WG), T, B];
  if (groups.some((g) => g > MAX_GROUPS)) throw new Error(`${label}: [${groups}] workgroups exceed the ${MAX_GROUPS} a dispatch allows per dimension`);
  return groups;
}

/**
 * x [B, T, parts·heads·Dh] (feature = part·heads·Dh + head·Dh + e, timm's qkv layout) -> `parts`
 * tensors [B, heads, T, Dh]: `permute(reshape(x, [B, T, parts, heads, Dh]), [2, 0, 3, 1, 4])` split
 * along its first axis, as one kernel.
 */
export function splitHeads(x: Tensor, parts: number, heads: number): Tensor<'f32'>[] {
  assertFloat('splitHeads', x);
  const label = opLabel('splitHeads', [x]);
  const [B, T, F] = x.shape;
  if (x.rank !== 3 || !(Number.isInteger(parts) && parts > 0 && Number.isInteger(heads) && heads > 0) || F % (parts * heads) !== 0) {
    throw new Error(`splitHeads: x ${fmt(x.shape)} must be [B, T, parts * heads * Dh] with parts = ${parts}, heads = ${heads}`);
  }
  const Dh = F / (parts * heads);
  const outs = Array.from({ length: parts }, () => empty([B, heads, T, Dh], 'f32', label));
  if (x.size > 0) launch(headsKernel('split', parts, heads, Dh), { T }, outs, [x], grid(label, B, T, heads, Dh), label);
  recordOp('splitHeads', [x], outs, (gs) => [mergeGrads(gs, [B, T, F], parts, heads, `${label} backward`)]);
  return outs;
}

/** The inverse of splitHeads: `parts` tensors [B, heads, T, Dh] -> [B, T, parts·heads·Dh]. */
export function mergeHeads(xs: readonly Tensor[]): Tensor<'f32'> {
  assertFloat('mergeHeads', ...xs);
  const label = opLabel('mergeHeads', xs);
  const s = xs[0]?.shape;
  if (!s || s.length !== 4 || xs.some((t) => fmt(t.shape) !== fmt(s))) {
    throw new Error(`mergeHeads: expected one or more tensors of one shape [B, heads, T, Dh], got ${xs.map((t) => fmt(t.shape)).join(', ') || 'none'}`);
  }
  const [B, H, T, Dh] = s;
  const parts = xs.length;
  const out = mergeGrads(xs, [B, T, parts * H * Dh], parts, H, label);
  recordOp('mergeHeads', xs, [out], ([g]) => splitHeads(g!, parts, H));
  return out;
}

/** Merge `parts` tensors (null: zeros) into [B, T, parts·H·Dh]. */
function mergeGrads(gs: readonly (Tensor | null)[], shape: number[], parts: number, H: number, label: string): Tensor<'f32'> {
  const [B, T, F] = shape;
  const Dh = F / (parts * H);
  const out = empty(shape, 'f32', label);
  const present = gs.map((g) => g !== null);
  const inputs = gs.filter((g): g is Tensor => g !== null);
  if (out.size > 0) launch(headsKernel('merge', parts, H, Dh, present), { T }, [out], inputs, grid(label, B, T, H, Dh), label);
  return out;
}
