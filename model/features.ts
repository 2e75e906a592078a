// Few-shot features of a backbone output (docs/algorithm.md §8.1): the [cls] token and the attention-weighted mean
// of the patch tokens, each L2-normalised, concatenated; also the plain mean of the patch tokens, and
// all patch tokens flattened in raster order (the spatial feature map, as ProtoNet's conv-4 embedding).
import { concat, div, l2Normalize, matmul, mean, narrow, reshape, sum, type Tensor } from '../engine/api.js';
import type { VitOutput } from './vit.js';

export type FeatureComponent = 'cls' | 'weighted' | 'mean' | 'patches';

/** Width of a component for D-wide tokens and N patches. */
export function componentWidth(c: FeatureComponent, D: number, N: number): number {
  return c === 'patches' ? N * D : D;
}

/** [B, Σ widths] features from tokens [B, 1 + N, D] (and the [cls] attention [B, N] for 'weighted'). */
export function fewShotFeatures(out: VitOutput, components: readonly FeatureComponent[] = ['cls', 'weighted']): Tensor<'f32'> {
  const [B, T, D] = out.tokens.shape;
  const patches = narrow(out.tokens, 1, 1, T - 1);
  const parts = components.map((c) => {
    if (c === 'cls') return reshape(narrow(out.tokens, 1, 0, 1), [B, D]);
    if (c === 'mean') return mean(patches, 1);
    if (c === 'patches') return reshape(patches, [B, (T - 1) * D]);
    if (!out.clsAttention) throw new Error("fewShotFeatures: 'weighted' needs the backbone's clsAttention (forward with { clsAttention: true })");
    const w = div(out.clsAttention, sum(out.clsAttention, 1, true));
    return reshape(matmul(reshape(w, [B, 1, T - 1]), patches), [B, D]);
  });
  const normed = parts.map((p) => l2Normalize(p, -1));
  return normed.length === 1 ? normed[0] : concat(normed, 1);
}
