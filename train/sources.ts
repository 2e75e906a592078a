// Opens the datasets a run names in its config: train / val / test class splits and the
// normalisation statistics computed from the training split.
import { readdir } from 'node:fs/promises';
import { channelStats, NORMALIZATION, openCifar100, openImageFolder, readClassList, SyntheticGlyphs, type ImageDataset, type Normalization } from './data/index.js';
import type { TrainConfig } from './config.js';
import { OMNIGLOT_SPLITS, openOmniglotPack, type AlphabetSplits } from './data/omniglot-pack.js';
import { RotatedClassesDataset } from './data/rotated-classes.js';

export interface DataSplits {
  train: ImageDataset;
  /** Held-out classes for periodic validation (the test classes when no validation split exists). */
  val: ImageDataset;
  test: ImageDataset;
  normalize: Normalization;
}

type DataConfig = TrainConfig['data'];

/** Omniglot folders of other alphabets: the first five (sorted) for training, the rest held out. */
const OMNIGLOT_TRAIN_ALPHABETS = 5;

async function topFolders(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`data folder ${root}: ${e.code === 'ENOENT' ? 'no such folder' : e.message}`);
  });
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

function needPath(d: DataConfig): string {
  if (!d.path) throw new Error(`data.kind '${d.kind}' needs a data path (--data PATH)`);
  return d.path;
}

/** A split given as a file of class names or a list of top-level folders. */
async function folderSplit(root: string, d: DataConfig, split: string | string[] | undefined, fallback: { topFolders?: string[] }): Promise<ImageDataset> {
  const opts = { resize: d.imageSize, invert: d.invert };
  if (typeof split === 'string') return openImageFolder(root, { ...opts, classes: await readClassList(split) });
  if (Array.isArray(split)) return openImageFolder(root, { ...opts, topFolders: split });
  return openImageFolder(root, { ...opts, ...fallback });
}

export async function openSplits(d: DataConfig, seed: number): Promise<DataSplits> {
  let train: ImageDataset;
  let val: ImageDataset | undefined;
  let test: ImageDataset;
  let normalize: Normalization | undefined;
  switch (d.kind) {
    case 'synthetic': {
      const size = d.imageSize;
      train = new SyntheticGlyphs({ seed, split: 'train', size });
      val = new SyntheticGlyphs({ seed, split: 'val', size });
      test = new SyntheticGlyphs({ seed, split: 'test', size });
      break;
    }
    case 'omniglot':
    case 'folder': {
      if (d.kind === 'omniglot' && !d.path) {
        const lists = { train: d.trainSplit, val: d.valSplit, test: d.testSplit };
        for (const [k, v] of Object.entries(lists))
          if (typeof v === 'string') throw new Error(`data.${k}Split: for the packed Omniglot subset give a list of its alphabets, not a class-list file (${v})`);
        ({ train, val, test } = await openOmniglotPack(d.imageSize, undefined, lists as AlphabetSplits));
        break;
      }
      const root = needPath(d);
      if (d.kind === 'omniglot' && !d.trainSplit) {
        const alphabets = await topFolders(root);
        if (alphabets.length < 2) throw new Error(`omniglot: ${root} has ${alphabets.length} alphabet folder(s); a split by alphabet needs at least 2`);
        // The background set's 8 alphabets: the packed subset's split (with its validation alphabet).
        const packed = Object.keys(OMNIGLOT_SPLITS);
        if (packed.every((a) => alphabets.includes(a)) && alphabets.length === packed.length) {
          const of = (part: string): string[] => packed.filter((a) => OMNIGLOT_SPLITS[a] === part);
          train = await folderSplit(root, d, of('train'), {});
          val = await folderSplit(root, d, d.valSplit ?? of('val'), {});
          test = await folderSplit(root, d, d.testSplit ?? of('test'), {});
          break;
        }
        const cut = Math.min(OMNIGLOT_TRAIN_ALPHABETS, alphabets.length - 1);
        train = await folderSplit(root, d, alphabets.slice(0, cut), {});
        test = await folderSplit(root, d, d.testSplit ?? alphabets.slice(cut), {});
      } else {
        if (!d.trainSplit || !d.testSplit)
          throw new Error(
            `data.kind '${d.kind}' ${d.kind === 'omniglot' ? 'with data.trainSplit ' : ''}needs data.trainSplit and data.testSplit (class-list files or top-level folders)`,
          );
        train = await folderSplit(root, d, d.trainSplit, {});
        test = await folderSplit(root, d, d.testSplit, {});
      }
      if (d.valSplit) val = await folderSplit(root, d, d.valSplit, {});
      break;
    }
    case 'cifar-fs':
    case 'fc100': {
      const root = needPath(d);
      const open = (part: 'train' | 'val' | 'test'): Promise<ImageDataset> => openCifar100(root, { split: { benchmark: d.kind as 'cifar-fs' | 'fc100', part } });
      [train, val, test] = await Promise.all([open('train'), open('val'), open('test')]);
      normalize = NORMALIZATION.cifar;
      break;
    }
  }
  // Statistics given in the config (a run records the ones it computed) win over computing them again.
  if (train.size === 0) throw new Error(`data: the training split (${train.name}) has no images`);
  normalize = d.normalize ?? normalize ?? (await channelStats(train, { seed }));
  // Turned copies change no channel statistic, so they are added after the statistics.
  if (d.rotatedClasses) train = new RotatedClassesDataset(train);
  return { train, val: val ?? test, test, normalize };
}
