// CIFAR-100 in its `cifar-100-binary` release (train.bin / test.bin, records of
// <coarse label byte><fine label byte><1024 R><1024 G><1024 B>), with the CIFAR-FS and FC100
// few-shot splits, which both pool the 600 images of each class from the two files.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CIFAR_FS_CLASSES, FC100_SUPERCLASSES, type SplitPart } from './cifar-splits.js';
import { InMemoryDataset, listSome, type RgbImage } from './dataset.js';

const SIDE = 32;
const PIXELS = SIDE * SIDE;
const RECORD = 2 + 3 * PIXELS;

export type CifarBenchmark = 'cifar-fs' | 'fc100';

export interface Cifar100Options {
  /** Which record files to read; default both (the few-shot splits use all 600 images a class). */
  files?: readonly ('train' | 'test')[];
  /** A few-shot split: the images of its classes, labels 0..n-1 in sorted class-name order. */
  split?: { benchmark: CifarBenchmark; part: SplitPart };
  name?: string;
}

interface Records {
  bytes: Uint8Array;
  count: number;
  source: string;
}

async function readLines(file: string): Promise<string[]> {
  const text = await fs.readFile(file, 'utf8').catch((e: Error) => {
    throw new Error(`cifar100: cannot read ${file}: ${e.message}`);
  });
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

async function readRecords(file: string): Promise<Records> {
  const bytes = await fs.readFile(file).catch((e: Error) => {
    throw new Error(`cifar100: cannot read ${file}: ${e.message}`);
  });
  if (bytes.length === 0 || bytes.length % RECORD !== 0) {
    throw new Error(`cifar100: ${file} holds ${bytes.length} bytes, not a whole number of ${RECORD}-byte records`);
  }
  return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), count: bytes.length / RECORD, source: file };
}

/** Planar CHW record pixels to an HWC image. */
function recordImage(bytes: Uint8Array, r: number): RgbImage {
  const src = r * RECORD + 2;
  const data = new Uint8Array(3 * PIXELS);
  for (let p = 0; p < PIXELS; p++) {
    data[3 * p] = bytes[src + p];
    data[3 * p + 1] = bytes[src + PIXELS + p];
    data[3 * p + 2] = bytes[src + 2 * PIXELS + p];
  }
  return { width: SIDE, height: SIDE, data };
}

/** The fine class names of a split, given the fine -> coarse names found in the data. */
function splitClasses(split: { benchmark: CifarBenchmark; part: SplitPart }, coarseOf: Map<string, string>): string[] {
  if (split.benchmark === 'cifar-fs') return [...CIFAR_FS_CLASSES[split.part]].sort();
  const supers = FC100_SUPERCLASSES[split.part];
  const known = new Set(coarseOf.values());
  const missing = supers.filter((s) => !known.has(s));
  if (missing.length > 0) throw new Error(`cifar100: FC100 superclass(es) not in coarse_label_names.txt: ${listSome(missing)}`);
  return [...coarseOf.keys()].filter((f) => supers.includes(coarseOf.get(f)!)).sort();
}

/** Open a `cifar-100-binary` folder (the whole set, or a CIFAR-FS / FC100 split of it). */
export async function openCifar100(dir: string, opts: Cifar100Options = {}): Promise<InMemoryDataset> {
  const fine = await readLines(path.join(dir, 'fine_label_names.txt'));
  if (fine.length !== 100) throw new Error(`cifar100: ${path.join(dir, 'fine_label_names.txt')} names ${fine.length} classes, expected 100`);
  const files = opts.files ?? ['train', 'test'];
  // Every file is read, and the first failure in file order is reported, whichever read finished first
  // (a race here made the error name train.bin or test.bin from one run to the next).
  const reads = await Promise.allSettled(files.map((f) => readRecords(path.join(dir, `${f}.bin`))));
  const failed = reads.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const parts = reads.map((r) => (r as PromiseFulfilledResult<Records>).value);
  const needCoarse = opts.split?.benchmark === 'fc100';
  const coarse = needCoarse ? await readLines(path.join(dir, 'coarse_label_names.txt')) : [];
  const coarseOf = new Map<string, string>();
  for (const { bytes, count, source } of parts) {
    for (let r = 0; r < count; r++) {
      const c = bytes[r * RECORD];
      const f = bytes[r * RECORD + 1];
      if (f >= fine.length || (needCoarse && c >= coarse.length)) throw new Error(`cifar100: ${source} record ${r} has label ${c}/${f} out of range`);
      if (needCoarse) coarseOf.set(fine[f], coarse[c]);
    }
  }
  const classes = opts.split ? splitClasses(opts.split, coarseOf) : fine;
  const known = new Set(fine);
  const missing = classes.filter((c) => !known.has(c));
  if (missing.length > 0) throw new Error(`cifar100: split classes not in fine_label_names.txt: ${listSome(missing)}`);
  const labelOfFine = new Int32Array(fine.length).fill(-1);
  classes.forEach((c, i) => (labelOfFine[fine.indexOf(c)] = i));
  const images: RgbImage[] = [];
  const labels: number[] = [];
  const where: string[] = [];
  for (const { bytes, count, source } of parts) {
    for (let r = 0; r < count; r++) {
      const label = labelOfFine[bytes[r * RECORD + 1]];
      if (label < 0) continue;
      images.push(recordImage(bytes, r));
      labels.push(label);
      where.push(`${source}#${r}`);
    }
  }
  const name = opts.name ?? (opts.split ? `${opts.split.benchmark}-${opts.split.part}` : 'cifar100');
  return new InMemoryDataset(name, classes, images, Int32Array.from(labels), where);
}
