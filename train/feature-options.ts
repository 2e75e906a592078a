// The feature kinds and test-time shift settings the commands and the configuration name: plain values,
// no engine, so that the configuration (and `smkd train`, which takes its run lock before the engine
// loads) can use them without loading the model. features.ts re-exports them.

/**
 * What an image's feature is made of: the [cls] token ('cls'), the [cls]-attention-weighted mean of
 * the patch tokens ('pooled', the reference code's pooling), the plain mean of the patch tokens ('mean'), [cls]
 * and pooled concatenated ('concat', the reference code's default), or every patch token flattened in raster order
 * ('patches', the spatial map, as ProtoNet's conv-4 embedding flattens its feature map), or [cls]
 * and the flattened patches ('tokens', the omniglot recipe's, docs/omniglot-recipe.md). Each part
 * is L2-normalised on its own.
 */
export type FeatureKind = 'cls' | 'pooled' | 'mean' | 'concat' | 'patches' | 'tokens';

export const FEATURE_KINDS: readonly FeatureKind[] = ['cls', 'pooled', 'mean', 'concat', 'patches', 'tokens'];

/**
 * Every shift of up to ±radius pixels in x and y, (2·radius + 1)² of them, [0, 0] first. Averaging a
 * ViT's features over them averages over the alignments of its patch grid: on the Omniglot validation
 * alphabet (patch 7, 28 px) radius 3 (all 7 phases of the 7-px grid, 49 passes) took 5-way 1-shot from
 * 72.5 to 86.9 % and 20-way 1-shot from 47.0 to 68.3 % (docs/omniglot-recipe.md, part D).
 */
export function shiftGrid(radius: number): [number, number][] {
  if (!Number.isInteger(radius) || radius < 0) throw new Error(`shiftGrid: radius must be a non-negative integer, got ${radius}`);
  const out: [number, number][] = [[0, 0]];
  for (let dy = -radius; dy <= radius; dy++) for (let dx = -radius; dx <= radius; dx++) if (dx !== 0 || dy !== 0) out.push([dx, dy]);
  return out;
}

/**
 * The commands' default shift radius: on a coarse patch grid (8×8 or fewer patches, where a few pixels
 * move a stroke into another patch) every phase of the grid, at most ±3 px (49 passes); on a finer grid
 * none, since a shift there is a small part of a patch's neighbourhood and 49 passes of a large model
 * cost more (measured only at patch 7 on 28 px).
 */
export function defaultShiftRadius(patchSize: number, imgSize: number): number {
  return imgSize / patchSize > 8 ? 0 : Math.min(3, Math.floor(patchSize / 2));
}
