// What `smkd show` feeds a checkpoint and what it draws on: images prepared exactly as `smkd embed`
// prepares them for that checkpoint (the run's or the file's preprocessing), the pixels the model saw
// (the evaluation crop, un-normalised), nearest-neighbour upscaling and PNG output through sharp.
import { stat } from 'node:fs/promises';
import type { LoadedBackbone } from '../backbone-file.js';
import { resolveConfig } from '../config.js';
import { decodeImage, evalTransform, NORMALIZATION, type Normalization, type RgbImage } from '../data/index.js';
import type { FeatureKind } from '../features.js';
import { loadSharp } from '../optional-deps.js';
import { openSplits } from '../sources.js';

/** How images go into a checkpoint's backbone (the settings `smkd embed` uses when given no flags). */
export interface ImagePreparation {
  /** Crop side of the evaluation transform: the model's image size. */
  size: number;
  normalize: Normalization;
  /** Decoding: shorter side resized to this first (as the training images were), inversion (Omniglot runs). */
  decode: { resize?: number; invert: boolean };
  /** Shorter side before the centre crop = round(size · resizeRatio); default 256/224. */
  resizeRatio?: number;
  /** The feature kind the run evaluates with. */
  features: FeatureKind;
}

/**
 * The preparation of `smkd embed` without flags: a checkpoint inside a run takes the run's config
 * (normalised with its training split's statistics), a bare file its `preprocessing` metadata, and a
 * foreign file ImageNet statistics, no resize, no inversion.
 */
export async function checkpointPreparation(loaded: LoadedBackbone): Promise<ImagePreparation> {
  const run = loaded.runConfig ? await resolveConfig('tiny', 1, loaded.runConfig, {}) : undefined;
  const pre = loaded.preprocessing;
  const normalize = run ? (run.data.normalize ?? (await openSplits(run.data, run.seed)).normalize) : (pre?.normalize ?? NORMALIZATION.imagenet);
  return {
    size: loaded.config.imgSize,
    normalize,
    decode: { resize: run?.data.imageSize ?? pre?.imageSize, invert: run?.data.invert ?? pre?.invert ?? false },
    resizeRatio: run?.eval.resizeRatio ?? pre?.resizeRatio,
    features: run?.eval.features ?? pre?.features ?? 'concat',
  };
}

/** Decoded image files; a missing or unreadable file is an error naming it (`what` names the command). */
export async function readImages(files: readonly string[], prep: ImagePreparation, what: string): Promise<RgbImage[]> {
  const out: RgbImage[] = [];
  for (const file of files) {
    const s = await stat(file).catch(() => null);
    if (!s) throw new Error(`${what}: image ${file}: no such file`);
    if (!s.isFile()) throw new Error(`${what}: image ${file} is not a file`);
    out.push(
      await decodeImage(file, prep.decode).catch((e: Error) => {
        throw new Error(`${what}: image ${file} could not be decoded (${e.message.split('\n')[0]})`);
      }),
    );
  }
  return out;
}

/** The backbone's input for `images`: [n, 3, size, size] through the evaluation transform. */
export function modelInput(images: readonly RgbImage[], prep: ImagePreparation): Float32Array {
  const len = 3 * prep.size * prep.size;
  const out = new Float32Array(images.length * len);
  images.forEach((img, k) => evalTransform(img, prep.size, prep.normalize, out, k * len, prep.resizeRatio));
  return out;
}

/** Image k of a model input [n, 3, size, size] as 8-bit RGB: the crop the model saw, normalisation undone. */
export function seenPixels(input: Float32Array, k: number, size: number, norm: Normalization): RgbImage {
  const plane = size * size;
  const data = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const base = (3 * k + c) * plane;
    for (let p = 0; p < plane; p++) {
      const v = (input[base + p] * norm.std[c] + norm.mean[c]) * 255;
      data[3 * p + c] = Math.min(255, Math.max(0, Math.round(v)));
    }
  }
  return { width: size, height: size, data };
}

/** `img` enlarged `scale` times, each pixel a scale x scale block (nearest neighbour: cells stay sharp). */
export function upscale(img: RgbImage, scale: number): RgbImage {
  const width = img.width * scale;
  const height = img.height * scale;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = Math.floor(y / scale);
    for (let x = 0; x < width; x++) {
      const s = 3 * (sy * img.width + Math.floor(x / scale));
      data.set(img.data.subarray(s, s + 3), 3 * (y * width + x));
    }
  }
  return { width, height, data };
}

/** The factor that makes a side of `size` px at least 224 px on screen (Omniglot's 28 px: 8). */
export function defaultScale(size: number): number {
  return Math.max(1, Math.ceil(224 / size));
}

/** An RGB raster as a PNG file (lossless: pixel values read back unchanged). */
export async function writePng(file: string, img: RgbImage): Promise<void> {
  await (
    await loadSharp()
  )(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } })
    .png()
    .toFile(file);
}

/** An RGB raster as a data: URI of a PNG (thumbnails inside an SVG). */
export async function pngDataUri(img: RgbImage): Promise<string> {
  const png = await (
    await loadSharp()
  )(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** An RGB colour of a `#rrggbb` string (the colour schemes' output). */
export function hexColour(hex: string): [number, number, number] {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) throw new Error(`not a #rrggbb colour: ${hex}`);
  return [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
}
