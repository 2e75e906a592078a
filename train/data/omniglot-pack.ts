// The Omniglot subset packed into the repository (data/omniglot/, rebuilt by scripts/pack-omniglot.ts):
// 8 alphabets of the background set, split by alphabet into train / val / test, already inverted and
// resized, so the default dataset needs neither the PNG tree nor a decoder.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { InMemoryDataset, type ImageDataset, type RgbImage } from './dataset.js';

export type SplitName = 'train' | 'val' | 'test';

/**
 * The split of every alphabet. Test: the last three (sorted), as the probes and earlier studies;
 * validation: Greek, the smallest of the rest but one, so that four alphabets (133 characters) train.
 * Nothing is ever chosen on the test alphabets.
 */
export const OMNIGLOT_SPLITS: Readonly<Record<string, SplitName>> = {
  Balinese: 'train',
  Early_Aramaic: 'train',
  Greek: 'val',
  'Japanese_(katakana)': 'train',
  Korean: 'train',
  Latin: 'test',
  Sanskrit: 'test',
  Tagalog: 'test',
};

export interface OmniglotPackMeta {
  source: string;
  size: number;
  preprocessing: string;
  splits: Readonly<Record<string, SplitName>>;
  /** In storage order; `images` consecutive images each. */
  classes: { name: string; alphabet: string; images: number; files: string[] }[];
}

export function packFiles(dir: string, size: number): { pixels: string; meta: string } {
  return { pixels: path.join(dir, `omniglot-${size}.u8.gz`), meta: path.join(dir, `omniglot-${size}.json`) };
}

/** The folder `sub` of this package holding `marker` (from the source tree or from dist/), or undefined. */
export function packageFolder(sub: string, marker: string): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
    const candidate = path.join(dir, sub);
    if (existsSync(path.join(candidate, marker))) return candidate;
  }
  return undefined;
}

/** data/omniglot of this package (from the source tree or from dist/). */
export function packDir(): string {
  const dir = packageFolder(path.join('data', 'omniglot'), 'LICENSE');
  if (!dir) throw new Error('the packed Omniglot data (data/omniglot/) is not in this installation; rebuild it with scripts/pack-omniglot.ts or pass --data');
  return dir;
}

/** Image sides the installation has packs for. */
export function packedSizes(dir = packDir()): number[] {
  return readdirSync(dir)
    .map((f) => /^omniglot-(\d+)\.json$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Gray pixels replicated to 3 channels (the ViT's patch embedding takes RGB, docs/algorithm.md §9.2). */
function rgb(gray: Uint8Array, size: number): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < gray.length; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = gray[i];
  return { width: size, height: size, data };
}

/** Alphabets per split, overriding the pack's own (OMNIGLOT_SPLITS) for the splits given. */
export type AlphabetSplits = Partial<Record<SplitName, readonly string[]>>;

/**
 * The split of each alphabet of the pack with `override`'s lists in place of the pack's own for the
 * splits they give. An alphabet may be in one split only; one the pack does not have is an error that
 * lists the pack's alphabets; alphabets no split names are left out.
 */
export function alphabetSplits(packed: Readonly<Record<string, SplitName>>, override: AlphabetSplits): Map<string, SplitName> {
  const out = new Map<string, SplitName>();
  const given = (['train', 'val', 'test'] as const).filter((s) => override[s] !== undefined);
  for (const [alphabet, split] of Object.entries(packed)) if (!given.includes(split)) out.set(alphabet, split);
  // A split the override leaves alone keeps its alphabets unless the override moves them elsewhere.
  for (const s of given) {
    for (const a of override[s]!) {
      if (!(a in packed)) throw new Error(`data.${s}Split: the packed Omniglot subset has no alphabet '${a}' (it has ${Object.keys(packed).join(', ')})`);
      const before = out.get(a);
      if (before !== undefined && given.includes(before)) throw new Error(`data: alphabet '${a}' is in both data.${before}Split and data.${s}Split`);
      out.set(a, s);
    }
  }
  return out;
}

/** The train, val and test splits of the pack at `size` px (by the pack's split of the alphabets, or `override`'s). */
export async function openOmniglotPack(size: number, dir = packDir(), override: AlphabetSplits = {}): Promise<Record<SplitName, ImageDataset>> {
  const files = packFiles(dir, size);
  if (!existsSync(files.meta))
    throw new Error(
      `no Omniglot pack at ${size} px in ${dir} (packed sizes: ${packedSizes(dir).join(', ') || 'none'}); rebuild with: npx tsx scripts/pack-omniglot.ts <omniglot/background> --size ${size}`,
    );
  const meta = JSON.parse(readFileSync(files.meta, 'utf8')) as OmniglotPackMeta;
  const pixels = gunzipSync(await readFile(files.pixels));
  const total = meta.classes.reduce((a, c) => a + c.images, 0);
  if (pixels.length !== total * size * size)
    throw new Error(`${files.pixels}: ${pixels.length} bytes, expected ${total} images of ${size}x${size}; the pack is damaged, rebuild it`);
  const parts: Record<SplitName, { classes: string[]; images: RgbImage[]; labels: number[]; names: string[] }> = {
    train: { classes: [], images: [], labels: [], names: [] },
    val: { classes: [], images: [], labels: [], names: [] },
    test: { classes: [], images: [], labels: [], names: [] },
  };
  const splitOf = alphabetSplits(meta.splits, override);
  let offset = 0;
  for (const c of meta.classes) {
    const split = splitOf.get(c.alphabet);
    if (split === undefined) {
      offset += c.images * size * size;
      continue;
    }
    const part = parts[split];
    const label = part.classes.length;
    part.classes.push(c.name);
    for (let i = 0; i < c.images; i++, offset += size * size) {
      part.images.push(rgb(pixels.subarray(offset, offset + size * size), size));
      part.labels.push(label);
      part.names.push(`omniglot pack: ${c.name}/${c.files[i]}`);
    }
  }
  const make = (s: SplitName): ImageDataset => new InMemoryDataset(`omniglot-${size}-${s}`, parts[s].classes, parts[s].images, Int32Array.from(parts[s].labels), parts[s].names);
  return { train: make('train'), val: make('val'), test: make('test') };
}
