// The last block's [cls] attention of each head, on every platform (`smkd show attention` and the page of
// web/ draw it): one forward with the per-head maps, read back once.
import { fromArray, noGrad, tidy } from '../../engine/api.js';
import type { VisionTransformer } from '../../model/vit.js';
import { inEvalMode } from '../image-features.js';

/** The last block's [cls] attention of every head for a batch of images. */
export interface ClsAttentionMaps {
  /** [count, heads, gh * gw]: each head's softmax probabilities of the patch keys (the [cls] key's share left out). */
  data: Float32Array;
  count: number;
  heads: number;
  gh: number;
  gw: number;
}

/** Per-head [cls] attention of the last block for images [count, 3, size, size] (normalised), in eval mode. */
export async function clsAttentionMaps(backbone: VisionTransformer, images: Float32Array, count: number, size: number): Promise<ClsAttentionMaps> {
  return inEvalMode(backbone, async () => {
    let grid = { gh: 0, gw: 0 };
    const maps = tidy(() =>
      noGrad(() => {
        const out = backbone.forward(fromArray(images, [count, 3, size, size]), { clsAttentionHeads: true });
        grid = { gh: out.gh, gw: out.gw };
        return out.clsAttentionHeads!;
      }),
    );
    try {
      return { data: await maps.toArray(), count, heads: maps.shape[1], ...grid };
    } finally {
      maps.dispose();
    }
  });
}

/** Weight of the attention colour over the gray image in a head's panel. */
export const ATTENTION_ALPHA = 0.6;
