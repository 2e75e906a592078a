// `smkd embed`: the features of image files from a backbone (docs/algorithm.md §8.1: evaluation transform and
// features), written to a safetensors file with the image paths in its metadata, for users who
// classify or retrieve with their own code.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeSafetensors } from '../engine/index.js';
import type { VisionTransformer } from '../model/vit.js';
import { FolderWalk } from './data/folder-walk.js';
import { decodeImage, evalTransform, polarityWarning, type Normalization, type RgbImage } from './data/index.js';
import { concatRows, featureComponents, inEvalMode, shiftedFeatures, type FeatureKind } from './features.js';

/**
 * The image files of `inputs`: a folder stands for every image below it at any depth (hidden
 * entries skipped; the entries of a folder in name order, files and sub-folders alike), a file for
 * itself, in the order given. Every folder is read once (FolderWalk): a link loop is passed over with
 * one warning.
 */
export async function listImages(inputs: readonly string[], onWarning: (message: string) => void = (m) => console.warn(m), where = 'embed'): Promise<string[]> {
  const out: string[] = [];
  const folders = new FolderWalk();
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (!(await folders.enter(dir, depth))) return;
    const { dirs, files } = await folders.entries(dir);
    // Names in one sorted sequence, as before: a folder's entries interleave files and sub-folders by name.
    const names = [...dirs.map((d) => ({ d, f: false })), ...files.map((d) => ({ d, f: true }))].sort((a, b) => (a.d < b.d ? -1 : a.d > b.d ? 1 : 0));
    for (const { d, f } of names) {
      if (f) out.push(path.join(dir, d));
      else await walk(path.join(dir, d), depth + 1);
    }
  };
  for (const input of inputs) {
    const s = await stat(input).catch(() => null);
    if (!s) throw new Error(`${where}: ${input}: no such file or folder`);
    if (s.isDirectory()) await walk(input, 0);
    else out.push(input);
  }
  const w = folders.warning(where);
  if (w) onWarning(w);
  return out;
}

/** Paths listed in a text file, one per line (blank lines and '#' comments ignored), as written. */
export async function readFileList(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new Error(`file list ${file}: ${e.message}`);
  });
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l.length > 0);
}

export interface EmbedOptions {
  /** Crop side of the evaluation transform. */
  size: number;
  normalize: Normalization;
  kind?: FeatureKind;
  /** Decoding: shorter side resized to this on load (as a dataset's images), inversion (Omniglot). */
  decode?: { resize?: number; invert?: boolean };
  /** Shorter side before the centre crop = round(size · resizeRatio); default 256/224. */
  resizeRatio?: number;
  batchSize?: number;
  /** Test-time shifts, the feature the mean over them (ExtractOptions.shifts); default none. */
  shifts?: readonly (readonly [number, number])[];
  onWarning?: (message: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface Embeddings {
  /** The files embedded, in row order. */
  paths: string[];
  /** [paths.length, dim] row-major. */
  data: Float32Array;
  dim: number;
  kind: FeatureKind;
  /** Files that could not be decoded (no row). */
  skipped: string[];
}

/** Unreadable images named one by one up to this many, then one count. */
const MAX_NAMED_SKIPS = 20;

/**
 * Features of `files` in batches on the GPU; decoding of the next batch overlaps the forward of the
 * current one. An unreadable file is skipped with one warning naming it.
 */
export async function embedImages(backbone: VisionTransformer, files: readonly string[], opts: EmbedOptions): Promise<Embeddings> {
  const kind = opts.kind ?? 'concat';
  const components = featureComponents(kind);
  const bs = opts.batchSize ?? 64;
  const warn = opts.onWarning ?? ((m: string) => console.warn(m));
  const skipped: string[] = [];
  const decodeBatch = (start: number): Promise<{ file: string; img: RgbImage | null }[]> =>
    Promise.all(
      files.slice(start, start + bs).map(async (file) => {
        try {
          return { file, img: await decodeImage(file, opts.decode) };
        } catch (e) {
          skipped.push(file);
          // The first ones by name, then one line at the end: 100,000 unreadable files are not 100,000 lines.
          if (skipped.length <= MAX_NAMED_SKIPS) warn(`embed: skipping unreadable image ${file} (${(e as Error).message.split('\n')[0].slice(0, 200)})`);
          return { file, img: null };
        }
      }),
    );
  const paths: string[] = [];
  const rows: Float32Array[] = [];
  let dim = 0;
  await inEvalMode(backbone, async () => {
    let next = files.length > 0 ? decodeBatch(0) : null;
    for (let start = 0; next; start += bs) {
      const batch = (await next).filter((b): b is { file: string; img: RgbImage } => b.img !== null);
      next = start + bs < files.length ? decodeBatch(start + bs) : null;
      if (batch.length === 0) continue;
      if (start === 0) {
        const w = polarityWarning(
          batch.map((b) => b.img),
          opts.normalize,
          `embed: the first ${batch.length} image(s)`,
        );
        if (w) warn(w);
      }
      const len = 3 * opts.size * opts.size;
      const images = new Float32Array(batch.length * len);
      batch.forEach((b, k) => evalTransform(b.img, opts.size, opts.normalize, images, k * len, opts.resizeRatio));
      const f = await shiftedFeatures(backbone, images, batch.length, opts.size, components, opts.shifts);
      dim = f.dim;
      rows.push(f.data);
      paths.push(...batch.map((b) => b.file));
      opts.onProgress?.(Math.min(start + bs, files.length), files.length);
    }
  });
  if (paths.length === 0) throw new Error(`embed: none of the ${files.length} image(s) could be read`);
  if (skipped.length > MAX_NAMED_SKIPS)
    warn(`embed: skipped ${skipped.length} unreadable images in all (${skipped.length - MAX_NAMED_SKIPS} not named above; all are in the output's 'skipped' metadata)`);
  return { paths, data: concatRows(rows, paths.length * dim), dim, kind, skipped };
}

/**
 * The embeddings as safetensors: tensor `features` [n, dim] (float32), metadata `paths` (JSON list,
 * row order), `feature_kind`, `components`, `count`, `dim`, `skipped`, plus `extra` (e.g. the model).
 */
export async function writeEmbeddings(file: string, e: Embeddings, extra: Record<string, string> = {}): Promise<void> {
  await writeSafetensors(file, [['features', { data: e.data, shape: [e.paths.length, e.dim] }]], {
    ...extra,
    paths: JSON.stringify(e.paths),
    feature_kind: e.kind,
    components: JSON.stringify(featureComponents(e.kind)),
    count: String(e.paths.length),
    dim: String(e.dim),
    skipped: JSON.stringify(e.skipped),
  });
}
