// `smkd show attention`: where the teacher's [cls] token looks in the last block, one panel per head,
// laid over the image as the model saw it (DINO's attention maps).
import { interpolateViridis } from 'd3-scale-chromatic';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { loadBackbone, type Network } from '../backbone-file.js';
import type { RgbImage } from '../data/index.js';
import { ATTENTION_ALPHA, clsAttentionMaps } from './attention-maps.js';
import { checkpointPreparation, defaultScale, hexColour, modelInput, readImages, seenPixels, upscale, writePng } from './input.js';

export { ATTENTION_ALPHA, clsAttentionMaps, type ClsAttentionMaps } from './attention-maps.js';

/** White pixels between panels. */
export const PANEL_GAP = 4;

/**
 * One image's picture: the image as the model saw it, then one panel per head, side by side, each
 * `scale` times the crop. A head's panel is the image in gray under viridis colours of its attention
 * divided by that head's largest value (heads differ in sharpness: each panel shows where its head
 * looks most), one flat colour per patch (nearest upsampling: the cells are the model's). Remainder
 * pixels outside the patch grid stay gray. `maps` is [heads, gh * gw] for this image.
 */
export function attentionPicture(seen: RgbImage, maps: Float32Array, heads: number, grid: { gh: number; gw: number; patchSize: number }, scale: number): RgbImage {
  const big = upscale(seen, scale);
  const W = big.width;
  const H = big.height;
  const panels = 1 + heads;
  const width = panels * W + (panels - 1) * PANEL_GAP;
  const data = new Uint8Array(width * H * 3).fill(255);
  const N = grid.gh * grid.gw;
  const colours = Array.from({ length: heads }, (_, h) => {
    const cells = maps.subarray(h * N, (h + 1) * N);
    const top = Math.max(...cells);
    return Array.from(cells, (v) => hexColour(interpolateViridis(top > 0 ? v / top : 0)));
  });
  const cell = grid.patchSize * scale;
  for (let y = 0; y < H; y++) {
    const row = Math.floor(y / cell);
    for (let x = 0; x < W; x++) {
      const s = 3 * (y * W + x);
      const rgb = big.data.subarray(s, s + 3);
      data.set(rgb, 3 * (y * width + x));
      const gray = (rgb[0] + rgb[1] + rgb[2]) / 3;
      const col = Math.floor(x / cell);
      const inGrid = row < grid.gh && col < grid.gw;
      for (let h = 0; h < heads; h++) {
        const at = 3 * (y * width + (h + 1) * (W + PANEL_GAP) + x);
        const c = inGrid ? colours[h][row * grid.gw + col] : undefined;
        for (let ch = 0; ch < 3; ch++) data[at + ch] = Math.round(c ? (1 - ATTENTION_ALPHA) * gray + ATTENTION_ALPHA * c[ch] : gray);
      }
    }
  }
  return { width, height: H, data };
}

export interface ShowAttentionOptions {
  checkpoint: string;
  images: readonly string[];
  /** The folder the pictures go to (it must exist). */
  outDir: string;
  /** Screen pixels per image pixel; default: the crop at least 224 px. */
  scale?: number;
  network?: Network;
  numHeads?: number;
}

/** `<image name>-attention.png` for each image; a name that repeats gets `-2`, `-3`, ... */
function outputNames(images: readonly string[], outDir: string): string[] {
  const seen = new Map<string, number>();
  return images.map((file) => {
    const stem = path.basename(file, path.extname(file));
    const n = (seen.get(stem) ?? 0) + 1;
    seen.set(stem, n);
    return path.join(outDir, `${stem}${n > 1 ? `-${n}` : ''}-attention.png`);
  });
}

/** The command: one PNG per image in `outDir`; returns the files written. */
export async function showAttention(o: ShowAttentionOptions): Promise<string[]> {
  if (o.images.length === 0) throw new Error('show attention: no images given');
  if (!(await stat(o.outDir).catch(() => null))?.isDirectory()) throw new Error(`show attention: -o ${o.outDir}: no such folder`);
  const loaded = await loadBackbone(o.checkpoint, { network: o.network, numHeads: o.numHeads });
  try {
    const prep = await checkpointPreparation(loaded);
    const images = await readImages(o.images, prep, 'show attention');
    const input = modelInput(images, prep);
    const maps = await clsAttentionMaps(loaded.backbone, input, images.length, prep.size);
    const scale = o.scale ?? defaultScale(prep.size);
    const N = maps.gh * maps.gw;
    const files = outputNames(o.images, o.outDir);
    for (let k = 0; k < images.length; k++) {
      const picture = attentionPicture(
        seenPixels(input, k, prep.size, prep.normalize),
        maps.data.subarray(k * maps.heads * N, (k + 1) * maps.heads * N),
        maps.heads,
        { gh: maps.gh, gw: maps.gw, patchSize: loaded.config.patchSize },
        scale,
      );
      await writePng(files[k], picture);
    }
    return files;
  } finally {
    loaded.backbone.dispose();
  }
}
