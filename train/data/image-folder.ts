// Image folders: every leaf folder below the root is a class (root/class/img and Omniglot's
// root/alphabet/character/img alike), named by its path below the root, sorted; decoded with sharp.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadSharp } from '../optional-deps.js';
import { FolderWalk } from './folder-walk.js';
import { checkIndex, listSome, type ImageDataset, type RgbImage } from './dataset.js';

export interface ImageFolderOptions {
  /** Dataset name in messages; default the root folder's name. */
  name?: string;
  /** 255 - v after decoding (Omniglot: bright strokes on dark). */
  invert?: boolean;
  /** Resize the shorter side to this many pixels on load (Lanczos, as the Omniglot pack); the images are then cached. */
  resize?: number;
  /** Keep every decoded image in memory; default true when `resize` is set. */
  cache?: boolean;
  /** Only these classes (names as below the root). */
  classes?: readonly string[];
  /** Only the classes listed in this text file, one name per line ('#' starts a comment). */
  classesFile?: string;
  /** Only the classes below these top-level folders (Omniglot: a split by alphabet). */
  topFolders?: readonly string[];
  /** Error when more than this fraction of the images cannot be decoded; default 0.01. */
  maxFailFraction?: number;
  /** Where warnings go; default console.warn. */
  onWarning?: (message: string) => void;
  /** Decodes in flight while caching; default 4. */
  concurrency?: number;
}

/** Corrupt files named one by one up to this many, then one summary line. */
const MAX_NAMED_WARNINGS = 20;

interface ClassFolder {
  name: string;
  files: string[];
}

/**
 * The class folders below `root`: leaf folders (no subfolders) at any depth, sorted by name,
 * each with its image files sorted. Hidden entries are skipped.
 */
export async function findClassFolders(root: string, onWarning: (message: string) => void = (m) => console.warn(m)): Promise<ClassFolder[]> {
  const rootStat = await fs.stat(root).catch(() => null);
  if (!rootStat) throw new Error(`image folder ${root}: no such folder`);
  if (!rootStat.isDirectory()) throw new Error(`image folder ${root}: not a folder`);
  const found: ClassFolder[] = [];
  const emptyLeaves: string[] = [];
  // Every folder once, by its real path: a link back to a parent cannot make the walk endless.
  const folders = new FolderWalk();
  const walk = async (dir: string, rel: string[]): Promise<void> => {
    if (!(await folders.enter(dir, rel.length))) return;
    const { dirs, files } = await folders.entries(dir);
    if (dirs.length === 0) {
      if (rel.length === 0) return;
      if (files.length === 0) emptyLeaves.push(dir);
      else found.push({ name: rel.join('/'), files: files.map((f) => path.join(dir, f)) });
      return;
    }
    for (const d of dirs) await walk(path.join(dir, d), [...rel, d]);
  };
  await walk(root, []);
  const w = folders.warning(`image folder ${root}`);
  if (w) onWarning(w);
  if (found.length === 0) throw new Error(`image folder ${root}: no class folders with images (expected root/<class>/<image> or deeper)`);
  if (emptyLeaves.length > 0) throw new Error(`image folder ${root}: ${emptyLeaves.length} class folder(s) hold no images: ${listSome(emptyLeaves)}`);
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Class names from a split file: one per line, blank lines and '#' comments ignored. */
export async function readClassList(file: string): Promise<string[]> {
  const text = await fs.readFile(file, 'utf8').catch((e: Error) => {
    throw new Error(`class list ${file}: ${e.message}`);
  });
  const names = text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l.length > 0);
  if (names.length === 0) throw new Error(`class list ${file}: no class names`);
  return names;
}

/**
 * Decode one file to 3-channel 8-bit RGB, optionally resized (shorter side) and inverted. The resize is
 * sharp's Lanczos-3, the filter scripts/pack-omniglot.ts made the pack with, so a model trained on the
 * pack sees the same pixels from Omniglot's PNG files (within rounding) as from the pack.
 */
export async function decodeImage(file: string, opts: { resize?: number; invert?: boolean } = {}): Promise<RgbImage> {
  let pipeline = (await loadSharp())(await fs.readFile(file));
  if (opts.resize !== undefined) {
    pipeline = pipeline.resize({ width: opts.resize, height: opts.resize, fit: 'outside', kernel: 'lanczos3' });
  }
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  const rgb = toRgb(data, info.width * info.height, info.channels);
  if (opts.invert) for (let i = 0; i < rgb.length; i++) rgb[i] = 255 - rgb[i];
  return { width: info.width, height: info.height, data: rgb };
}

/** Gray, gray+alpha, RGB or RGBA (alpha dropped, as PIL's convert('RGB')) to packed RGB. */
function toRgb(src: Uint8Array, pixels: number, channels: number): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  const colour = channels >= 3;
  for (let p = 0; p < pixels; p++) {
    const s = p * channels;
    out[p * 3] = src[s];
    out[p * 3 + 1] = colour ? src[s + 1] : src[s];
    out[p * 3 + 2] = colour ? src[s + 2] : src[s];
  }
  return out;
}

/** Open an image folder (or a split of it) as a dataset. */
export async function openImageFolder(root: string, opts: ImageFolderOptions = {}): Promise<ImageFolderDataset> {
  const name = opts.name ?? path.basename(path.resolve(root));
  let folders = await findClassFolders(root, opts.onWarning);
  const wanted = opts.classes ?? (opts.classesFile !== undefined ? await readClassList(opts.classesFile) : undefined);
  if (wanted) {
    const have = new Set(folders.map((f) => f.name));
    const missing = wanted.filter((c) => !have.has(c));
    if (missing.length > 0) {
      const from = opts.classesFile ? ` (listed in ${opts.classesFile})` : '';
      throw new Error(`image folder ${root}: ${missing.length} class(es)${from} not found: ${listSome(missing)}`);
    }
    const keep = new Set(wanted);
    folders = folders.filter((f) => keep.has(f.name));
  }
  if (opts.topFolders) {
    const tops = new Set(folders.map((f) => f.name.split('/')[0]));
    const missing = opts.topFolders.filter((t) => !tops.has(t));
    if (missing.length > 0) throw new Error(`image folder ${root}: top-level folder(s) not found: ${listSome(missing)}`);
    const keep = new Set(opts.topFolders);
    folders = folders.filter((f) => keep.has(f.name.split('/')[0]));
  }
  const ds = new ImageFolderDataset(name, root, folders, opts);
  if (opts.cache ?? opts.resize !== undefined) await ds.decodeAll(opts.concurrency ?? 4);
  return ds;
}

export class ImageFolderDataset implements ImageDataset {
  readonly classes: readonly string[];
  private files: string[];
  private labels: Int32Array;
  private cached: RgbImage[] | null = null;
  private readonly failed = new Set<number>();
  private warned = 0;

  constructor(
    readonly name: string,
    readonly root: string,
    folders: readonly ClassFolder[],
    private readonly opts: ImageFolderOptions,
  ) {
    this.classes = folders.map((f) => f.name);
    this.files = folders.flatMap((f) => f.files);
    this.labels = Int32Array.from(folders.flatMap((f, c) => f.files.map(() => c)));
  }

  get size(): number {
    return this.files.length;
  }

  /** Images that could not be decoded so far (skipped when cached, replaced when lazy). */
  get failures(): number {
    return this.failed.size;
  }

  label(i: number): number {
    return this.labels[checkIndex(this, i)];
  }

  describe(i: number): string {
    return this.files[checkIndex(this, i)];
  }

  /**
   * Cached: the stored image (do not modify it). Lazy: decoded now; a file that fails is warned
   * about once and replaced by the next readable image of its class.
   */
  async load(i: number): Promise<RgbImage> {
    checkIndex(this, i);
    if (this.cached) return this.cached[i];
    const label = this.labels[i];
    for (let j = i, tries = 0; tries < this.size; j = (j + 1) % this.size, tries++) {
      if (this.labels[j] !== label || this.failed.has(j)) continue;
      try {
        return await decodeImage(this.files[j], this.opts);
      } catch (e) {
        this.fail(j, e as Error);
      }
    }
    throw new Error(`image folder ${this.root}: no readable image left in class ${this.classes[label]}`);
  }

  /** Decode every image once into memory, dropping the unreadable ones. */
  async decodeAll(concurrency: number): Promise<void> {
    const images: (RgbImage | null)[] = new Array(this.size).fill(null);
    let next = 0;
    const work = async (): Promise<void> => {
      while (next < this.size) {
        const i = next++;
        try {
          images[i] = await decodeImage(this.files[i], this.opts);
        } catch (e) {
          this.fail(i, e as Error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, work));
    const keep = [...images.keys()].filter((i) => images[i] !== null);
    const perClass = new Int32Array(this.classes.length);
    for (const i of keep) perClass[this.labels[i]]++;
    const emptied = this.classes.filter((_, c) => perClass[c] === 0);
    if (emptied.length > 0) throw new Error(`image folder ${this.root}: no readable image in class(es) ${listSome(emptied)}`);
    this.files = keep.map((i) => this.files[i]);
    this.labels = Int32Array.from(keep, (i) => this.labels[i]);
    this.cached = keep.map((i) => images[i]!);
  }

  private fail(i: number, e: Error): void {
    if (this.failed.has(i)) return;
    this.failed.add(i);
    const warn = this.opts.onWarning ?? ((m: string) => console.warn(m));
    if (this.warned < MAX_NAMED_WARNINGS) warn(`image folder ${this.name}: skipping unreadable image ${this.files[i]} (${e.message.split('\n')[0]})`);
    else if (this.warned === MAX_NAMED_WARNINGS) warn(`image folder ${this.name}: more unreadable images; not naming them one by one`);
    this.warned++;
    const limit = this.opts.maxFailFraction ?? 0.01;
    if (this.failed.size > limit * this.files.length) {
      throw new Error(`image folder ${this.root}: ${this.failed.size} of ${this.files.length} images unreadable, more than ${limit * 100}% (last: ${this.files[i]})`);
    }
  }
}
