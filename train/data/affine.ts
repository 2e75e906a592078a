// Augmentation for pen strokes (the `omniglot` preset): a random affine warp of the whole character
// (rotation, scale, shift) for global views and a zoomed warp of part of it for local views, sampled
// bilinearly with a black background. The multi-crop pipeline (docs/algorithm.md §3.2: random resized crops at scale 0.25-1, flips,
// colour jitter) cuts most of a character away, mirrors it into another letter, and jitters colours
// Omniglot does not have; measured in docs/omniglot-recipe.md.
import type { Rng } from '../../engine/rng.js';
import type { RgbImage } from './dataset.js';

/** Ranges of one kind of view. */
export interface AffineView {
  /** Output side in pixels. */
  size: number;
  /** Rotation drawn from ±rotation degrees. */
  rotation: number;
  /** Scale factor drawn from [1 - scale, 1 + scale]. */
  scale: number;
  /** Shift drawn from ±shift of the image side, on each axis. */
  shift: number;
  /** Side of the source window as a fraction of the image, drawn from this range (1: the whole image). */
  window: readonly [number, number];
}

/** Output frame -> source frame, both normalised to [-1, 1]: source = [[a, -b], [b, a]] · out + [cx, cy]. */
export interface AffineMap {
  a: number;
  b: number;
  cx: number;
  cy: number;
}

/** One random view's map: a window of the image, rotated, scaled and shifted. */
export function drawAffine(view: AffineView, rng: Rng): AffineMap {
  const angle = (rng.uniform(-view.rotation, view.rotation) * Math.PI) / 180;
  const scale = rng.uniform(1 - view.scale, 1 + view.scale);
  const win = rng.uniform(view.window[0], view.window[1]);
  // The window's centre keeps the window inside the image before the shift.
  const cx = rng.uniform(-(1 - win), 1 - win) + rng.uniform(-2 * view.shift, 2 * view.shift);
  const cy = rng.uniform(-(1 - win), 1 - win) + rng.uniform(-2 * view.shift, 2 * view.shift);
  const k = win / scale;
  return { a: k * Math.cos(angle), b: k * Math.sin(angle), cx, cy };
}

/** A random view of `img` (drawAffine), as affineWarp writes it. */
export function affineView(img: RgbImage, view: AffineView, rng: Rng, out: Float32Array, offset = 0): void {
  affineWarp(img, view.size, drawAffine(view, rng), out, offset);
}

/**
 * Writes `img` through `map` as [3, S, S] floats in [0, 1] at `out[offset]`: output pixel centres map
 * to source coordinates in the normalised frame of torch's affine_grid / grid_sample
 * (align_corners = false), sampled bilinearly, black outside the image.
 */
export function affineWarp(img: RgbImage, S: number, map: AffineMap, out: Float32Array, offset = 0): void {
  const { a, b, cx, cy } = map;
  const { width: W, height: H, data } = img;
  const n = S * S;
  for (let v = 0; v < S; v++) {
    const yn = ((v + 0.5) / S) * 2 - 1;
    for (let u = 0; u < S; u++) {
      const xn = ((u + 0.5) / S) * 2 - 1;
      const sx = ((a * xn - b * yn + cx + 1) / 2) * W - 0.5;
      const sy = ((b * xn + a * yn + cy + 1) / 2) * H - 0.5;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      let r = 0;
      let g = 0;
      let bl = 0;
      for (let dy = 0; dy < 2; dy++) {
        const yy = y0 + dy;
        if (yy < 0 || yy >= H) continue;
        const wy = dy ? fy : 1 - fy;
        for (let dx = 0; dx < 2; dx++) {
          const xx = x0 + dx;
          if (xx < 0 || xx >= W) continue;
          const w = wy * (dx ? fx : 1 - fx);
          const p = (yy * W + xx) * 3;
          r += w * data[p];
          g += w * data[p + 1];
          bl += w * data[p + 2];
        }
      }
      const o = offset + v * S + u;
      out[o] = r / 255;
      out[o + n] = g / 255;
      out[o + 2 * n] = bl / 255;
    }
  }
}
