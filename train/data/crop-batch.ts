// The per-image work of a training batch (crops and masks of positions start.. of iteration `it`),
// shared by the worker threads and the inline path so both give bit-identical batches.
import type { Rng } from '../../engine/rng.js';
import { blockMask, maskRatio, type MaskOptions } from '../../model/masking.js';
import { affineView, type AffineView } from './affine.js';
import { augmentCrop, normalize, type AugmentSettings, type CropPipeline } from './augment.js';
import type { RgbImage } from './dataset.js';
import { keyedRng, STREAM } from './seed.js';

/** Everything a worker needs to augment any chunk of any iteration (plain data, cloneable). */
export interface CropConfig {
  seed: number;
  globalCrops: number;
  localCrops: number;
  global1: CropPipeline;
  global2: CropPipeline;
  local: CropPipeline;
  settings: AugmentSettings;
  /** Stroke augmentation (affine warps) instead of the multi-crop pipelines (docs/algorithm.md §3.5), when set. */
  strokes?: { global: AffineView; local: AffineView };
  /** Patch grid of a global crop, for the masks. */
  gridH: number;
  gridW: number;
  mask: MaskOptions;
}

export interface CropChunk {
  /** G arrays [n, 3, Sg, Sg]. */
  globals: Float32Array[];
  /** L arrays [n, 3, Sl, Sl]. */
  locals: Float32Array[];
  /** G arrays [n, gh * gw]. */
  masks: Uint8Array[];
}

/**
 * Crops and masks of the images at batch positions start .. start + images.length - 1 of
 * iteration `it`. Each image's random choices come from keys (seed, it, position) only.
 */
export function augmentChunk(cfg: CropConfig, it: number, start: number, images: readonly RgbImage[], masked: boolean): CropChunk {
  const n = images.length;
  const gLen = 3 * cfg.global1.size * cfg.global1.size;
  const lLen = 3 * cfg.local.size * cfg.local.size;
  const cells = cfg.gridH * cfg.gridW;
  const globals = Array.from({ length: cfg.globalCrops }, () => new Float32Array(n * gLen));
  const locals = Array.from({ length: cfg.localCrops }, () => new Float32Array(n * lLen));
  const masks = Array.from({ length: cfg.globalCrops }, () => new Uint8Array(n * cells));
  for (let k = 0; k < n; k++) {
    const pos = start + k;
    const rng = keyedRng(cfg.seed, STREAM.augment, it, pos);
    for (let g = 0; g < cfg.globalCrops; g++) {
      if (cfg.strokes) strokeCrop(images[k], cfg.strokes.global, cfg.settings, rng, globals[g], k * gLen);
      else augmentCrop(images[k], g === 0 ? cfg.global1 : cfg.global2, cfg.settings, rng, globals[g], k * gLen);
    }
    for (let l = 0; l < cfg.localCrops; l++) {
      if (cfg.strokes) strokeCrop(images[k], cfg.strokes.local, cfg.settings, rng, locals[l], k * lLen);
      else augmentCrop(images[k], cfg.local, cfg.settings, rng, locals[l], k * lLen);
    }
    if (!masked) continue;
    const mrng = keyedRng(cfg.seed, STREAM.mask, it, pos);
    for (let g = 0; g < cfg.globalCrops; g++) masks[g].set(blockMask(cfg.gridH, cfg.gridW, maskRatio(mrng, cfg.mask), mrng, cfg.mask), k * cells);
  }
  return { globals, locals, masks };
}

/** An affine view of a character, normalised. */
function strokeCrop(img: RgbImage, view: AffineView, settings: AugmentSettings, rng: Rng, out: Float32Array, offset: number): void {
  affineView(img, view, rng, out, offset);
  normalize(out, view.size * view.size, settings.normalize, offset);
}
