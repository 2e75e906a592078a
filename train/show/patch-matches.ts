// SMKD's patch matching between two images, on every platform (`smkd show matches` and the page of web/
// draw it): each patch token of A to its most cosine-similar patch token of B (the engine's fused
// cosineArgmax on the final-norm tokens, as phase 2 matches them), and the lines that show the matches.
import { interpolateViridis } from 'd3-scale-chromatic';
import { cosineArgmax, fromArray, narrow, noGrad, reshape, tidy } from '../../engine/api.js';
import type { VisionTransformer } from '../../model/vit.js';
import { inEvalMode } from '../image-features.js';

/** Patch `from` of image A (raster order) best matches patch `to` of image B, with this cosine. */
export interface PatchMatch {
  from: number;
  to: number;
  similarity: number;
}

export interface PatchMatches {
  /** One per patch of A, in raster order. */
  matches: PatchMatch[];
  gh: number;
  gw: number;
}

/**
 * The matches of A's patches into B's for images [2, 3, size, size] (A, B; normalised): indices from
 * cosineArgmax on the GPU, the cosine of each chosen pair in float64 from the read-back tokens.
 */
export async function patchMatches(backbone: VisionTransformer, images: Float32Array, size: number): Promise<PatchMatches> {
  return inEvalMode(backbone, async () => {
    let grid = { gh: 0, gw: 0 };
    const [best, patches] = tidy(() =>
      noGrad(() => {
        const out = backbone.forward(fromArray(images, [2, 3, size, size]));
        grid = { gh: out.gh, gw: out.gw };
        const [, T, D] = out.tokens.shape;
        const patches = narrow(out.tokens, 1, 1, T - 1);
        const a = reshape(narrow(patches, 0, 0, 1), [T - 1, D]);
        const b = reshape(narrow(patches, 0, 1, 1), [T - 1, D]);
        return [cosineArgmax(a, b), patches] as const;
      }),
    );
    try {
      const to = await best.toArray();
      const tokens = await patches.toArray();
      const [, N, D] = patches.shape;
      const row = (img: number, n: number): Float32Array => tokens.subarray((img * N + n) * D, (img * N + n + 1) * D);
      const matches = Array.from(to, (m, n) => ({ from: n, to: m, similarity: cosine(row(0, n), row(1, m)) }));
      return { matches, ...grid };
    } finally {
      best.dispose();
      patches.dispose();
    }
  });
}

/** Cosine of two vectors in float64 (0 when either is zero, as cosineArgmax scores it). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/** White pixels between the two images, room for the lines to be seen. */
export const MATCH_GAP = 32;

export interface MatchLayout {
  patchSize: number;
  /** Screen pixels per image pixel. */
  scale: number;
  /** Side of the (square) crops. */
  size: number;
  gh: number;
  gw: number;
}

/** A drawn match: from the centre of A's patch to the centre of B's, in picture pixels. */
export interface MatchLine extends PatchMatch {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  colour: string;
}

/**
 * The lines of the picture: one per match whose patch of A is `hidden` (all when no mask is given),
 * coloured by viridis of the cosine clamped to [0, 1] (a fixed scale, so pictures compare; below 0
 * is as unlike as 0).
 */
export function matchLines(m: readonly PatchMatch[], layout: MatchLayout, hidden?: Uint8Array): MatchLine[] {
  const cell = layout.patchSize * layout.scale;
  const offset = layout.size * layout.scale + MATCH_GAP;
  const centre = (n: number): [number, number] => [((n % layout.gw) + 0.5) * cell, (Math.floor(n / layout.gw) + 0.5) * cell];
  return m
    .filter((p) => !hidden || hidden[p.from])
    .map((p) => {
      const [x1, y1] = centre(p.from);
      const [x2, y2] = centre(p.to);
      return { ...p, x1, y1, x2: x2 + offset, y2, colour: interpolateViridis(Math.min(1, Math.max(0, p.similarity))) };
    });
}
