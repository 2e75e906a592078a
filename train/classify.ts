// `smkd classify`: few-shot classification of a user's own images. A support folder holds one folder
// per class (one or more images each); every query image goes to the class whose prototype (the mean
// of its support features, docs/algorithm.md §8.3) is the most cosine-similar. Images are prepared as
// the model's training images were: gray, strokes of the model's polarity (each image's background
// judged from its border), padded to a square, resized with the filter that made the training pack.
import { stat } from 'node:fs/promises';
import { findClassFolders, type Background, type RgbImage } from './data/index.js';
import { listImages } from './embed.js';
import { prototypeScores } from './fewshot.js';
import { loadSharp } from './optional-deps.js';

export { modelBackground, type Background } from './data/index.js';
export { imageFeatures, type FeatureOptions } from './image-features.js';

/** The classes of a support folder and their image files. */
export interface SupportSet {
  classes: string[];
  /** Per class, its image files (sorted). */
  files: string[][];
}

/**
 * The support set in `dir`: every leaf folder below it is a class (`dir/<class>/<image>`, or deeper,
 * named by its path), with at least one image; at least two classes. Errors name the problem.
 */
export async function readSupportFolder(dir: string): Promise<SupportSet> {
  const s = await stat(dir).catch(() => null);
  if (!s) throw new Error(`classify: support folder ${dir}: no such folder`);
  if (!s.isDirectory()) throw new Error(`classify: support folder ${dir} is not a folder (expected ${dir}/<class>/<image>)`);
  const folders = await findClassFolders(dir).catch((e: Error) => {
    throw new Error(`classify: support ${e.message.replace(/^image folder /, 'folder ')}`);
  });
  if (folders.length < 2)
    throw new Error(
      `classify: support folder ${dir} holds ${folders.length} class folder (${folders.map((f) => f.name).join(', ')}); few-shot classification needs at least 2 classes`,
    );
  return { classes: folders.map((f) => f.name), files: folders.map((f) => f.files) };
}

/** The query image files: files as given, folders for every image below them. */
export async function readQueries(inputs: readonly string[]): Promise<string[]> {
  if (inputs.length === 0) throw new Error('classify: no query images given (classify <support-folder> <query>...)');
  const files = await listImages(inputs, undefined, 'classify: query').catch((e: Error) => {
    throw new Error(e.message.replace(/^classify: query: /, 'classify: query '));
  });
  if (files.length === 0) throw new Error(`classify: the query folder(s) ${inputs.join(', ')} hold no images (.png, .jpg, .jpeg, .webp)`);
  return files;
}

/** Border intensities between these (of 255) leave the background in doubt. */
const UNSURE = [0.3 * 255, 0.7 * 255] as const;

/**
 * The background of a gray image judged from its border (a ring 1/16 of the side wide, at least one
 * pixel): its mean intensity, which side of mid-gray that is, and whether it is close enough to
 * mid-gray to be in doubt.
 */
export function judgeBackground(gray: Uint8Array, width: number, height: number): { mean: number; background: Background; unsure: boolean } {
  const ring = Math.max(1, Math.floor(Math.min(width, height) / 16));
  let sum = 0;
  let n = 0;
  for (let y = 0; y < height; y++) {
    const edgeRow = y < ring || y >= height - ring;
    for (let x = 0; x < width; x++) {
      if (edgeRow || x < ring || x >= width - ring) {
        sum += gray[y * width + x];
        n++;
      }
    }
  }
  const mean = sum / n;
  return { mean, background: mean >= 127.5 ? 'light' : 'dark', unsure: mean > UNSURE[0] && mean < UNSURE[1] };
}

export interface PreparedImage {
  file: string;
  /** side x side, the model's polarity, 3 equal channels. */
  image: RgbImage;
  /** Whether its intensities were turned over to match the model's polarity. */
  inverted: boolean;
  /** The background as judged (or as given). */
  background: Background;
  /** The judgement was close (a warning says so). */
  unsure: boolean;
}

export interface PrepareOptions {
  /** The side the model's images were decoded to (its preprocessing's imageSize). */
  side: number;
  /** The model's training background. */
  model: Background;
  /** The images' background: judged per image ('auto'), or given for all. */
  background: Background | 'auto';
}

/** A decoded image, one gray byte per pixel. */
export interface GrayImage {
  file: string;
  width: number;
  height: number;
  data: Uint8Array;
}

/** A file decoded to gray (transparency over white); an unreadable file is an error naming it. */
export async function decodeGray(file: string): Promise<GrayImage> {
  const decoded = await (
    await loadSharp('smkd classify')
  )(file)
    .flatten({ background: '#ffffff' })
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true })
    .catch((e: Error) => {
      throw new Error(`classify: image ${file} could not be decoded (${e.message.split('\n')[0]})`);
    });
  const { width, height, channels } = decoded.info;
  // greyscale() may still leave 3 channels for some inputs: take the first.
  const data = channels === 1 ? new Uint8Array(decoded.data) : Uint8Array.from({ length: width * height }, (_, p) => decoded.data[p * channels]);
  return { file, width, height, data };
}

/**
 * A gray image as the model's training images were made (scripts/pack-omniglot.ts): inverted when its
 * background is not the model's, padded to a square with the model's background (so the centre crop
 * cuts nothing off a wide image), resized to `side` with sharp's Lanczos filter, 3 equal channels.
 */
export async function toModelImage(g: GrayImage, opts: PrepareOptions): Promise<PreparedImage> {
  const { width, height } = g;
  const judged = judgeBackground(g.data, width, height);
  const background = opts.background === 'auto' ? judged.background : opts.background;
  const inverted = background !== opts.model;
  const gray = inverted ? g.data.map((v) => 255 - v) : g.data;
  const side = Math.max(width, height);
  const square = new Uint8Array(side * side).fill(opts.model === 'dark' ? 0 : 255);
  const ox = Math.floor((side - width) / 2);
  const oy = Math.floor((side - height) / 2);
  for (let y = 0; y < height; y++) square.set(gray.subarray(y * width, (y + 1) * width), (y + oy) * side + ox);
  // sharp hands back one-channel raw input as 3 channels: read the first of however many there are.
  const resized = await (
    await loadSharp('smkd classify')
  )(square, { raw: { width: side, height: side, channels: 1 } })
    .resize(opts.side, opts.side, { kernel: 'lanczos3', fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const ch = resized.info.channels;
  const data = new Uint8Array(opts.side * opts.side * 3);
  for (let p = 0; p < opts.side * opts.side; p++) data[3 * p] = data[3 * p + 1] = data[3 * p + 2] = resized.data[p * ch];
  return { file: g.file, image: { width: opts.side, height: opts.side, data }, inverted, background, unsure: opts.background === 'auto' && judged.unsure };
}

/** decodeGray, then toModelImage. */
export async function prepareImage(file: string, opts: PrepareOptions): Promise<PreparedImage> {
  return toModelImage(await decodeGray(file), opts);
}

/** One query's answer. */
export interface Prediction {
  file: string;
  predicted: string;
  /** Cosine similarity to the predicted class's prototype. */
  score: number;
  runnerUp: string;
  runnerUpScore: number;
  /** Cosine similarity to every class's prototype, in class order. */
  scores: number[];
  inverted: boolean;
}

/**
 * Prototype classification of the query rows: `features` [support + query rows, dim], the support rows
 * first, class by class as `counts` says.
 */
export function classifyRows(features: Float32Array, dim: number, counts: readonly number[], classes: readonly string[], queries: readonly PreparedImage[]): Prediction[] {
  const nSupport = counts.reduce((a, b) => a + b, 0);
  const labels = new Int32Array(nSupport + queries.length);
  let r = 0;
  counts.forEach((c, k) => {
    for (let i = 0; i < c; i++) labels[r++] = k;
  });
  const support = Int32Array.from({ length: nSupport }, (_, i) => i);
  const query = Int32Array.from({ length: queries.length }, (_, i) => nSupport + i);
  const scores = prototypeScores({ data: features, dim, labels }, support, labels.subarray(0, nSupport), classes.length, query);
  return queries.map((q, i) => {
    const s = scores[i];
    const order = [...s.keys()].sort((a, b) => s[b] - s[a]);
    return {
      file: q.file,
      predicted: classes[order[0]],
      score: s[order[0]],
      runnerUp: classes[order[1]],
      runnerUpScore: s[order[1]],
      scores: [...s],
      inverted: q.inverted,
    };
  });
}

/** A table of predictions: query, predicted class, score, runner-up, its score. */
export function formatPredictions(preds: readonly Prediction[]): string {
  const rows = preds.map((p) => [p.file, p.predicted, p.score.toFixed(3), p.runnerUp, p.runnerUpScore.toFixed(3)]);
  const head = ['query', 'predicted', 'score', 'runner-up', 'score'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]): string => cells.map((x, c) => (c === 2 || c === 4 ? x.padStart(widths[c]) : x.padEnd(widths[c]))).join('  ');
  return [line(head), ...rows.map(line)].join('\n').replace(/ +$/gm, '');
}
