import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { channelStats, subsetByClasses } from '../../../train/data/dataset.js';
import { findClassFolders, openImageFolder } from '../../../train/data/image-folder.js';
import { skipUnless } from '../../helpers/skip.js';
import { rejects } from './helpers.js';

const test = suite('image folder');
const OMNIGLOT = path.resolve(import.meta.dirname, '../../../../shared/data/omniglot/background');
let tmp = '';

/** A w x h image whose pixel (x, y) channel c is (x * 20 + y * 3 + c * 60 + seed) % 256. */
function pattern(w: number, h: number, seed: number): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) d[(y * w + x) * 3 + c] = (x * 20 + y * 3 + c * 60 + seed) % 256;
  return d;
}

async function writeImage(file: string, w: number, h: number, seed: number, format: 'png' | 'jpeg' | 'webp' | 'gray'): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  if (format === 'gray') {
    const g = new Uint8Array(w * h).map((_, i) => (i * 11 + seed) % 256);
    await sharp(g, { raw: { width: w, height: h, channels: 1 } })
      .png()
      .toFile(file);
    return;
  }
  const img = sharp(pattern(w, h, seed), { raw: { width: w, height: h, channels: 3 } });
  await (format === 'png' ? img.png() : format === 'jpeg' ? img.jpeg({ quality: 100, chromaSubsampling: '4:4:4' }) : img.webp({ lossless: true })).toFile(file);
}

test.before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'image-folder-test-'));
  // flat layout root/<class>/<image>
  await writeImage(path.join(tmp, 'flat/cat/b.png'), 8, 6, 1, 'png');
  await writeImage(path.join(tmp, 'flat/cat/a.webp'), 8, 6, 2, 'webp');
  await writeImage(path.join(tmp, 'flat/dog/c.jpg'), 12, 10, 3, 'jpeg');
  await writeImage(path.join(tmp, 'flat/dog/d.png'), 5, 7, 4, 'gray');
  await writeImage(path.join(tmp, 'flat/ant/e.png'), 9, 9, 5, 'png');
  await fs.writeFile(path.join(tmp, 'flat/dog/notes.txt'), 'not an image');
  // nested layout root/<alphabet>/<character>/<image>
  for (const [alpha, chars] of [
    ['Alpha', ['character01', 'character02']],
    ['Beta', ['character01']],
    ['Gamma', ['character03', 'character01']],
  ] as const) {
    for (const ch of chars) for (let k = 0; k < 3; k++) await writeImage(path.join(tmp, 'nested', alpha, ch, `${k}.png`), 10, 10, k, 'png');
  }
  await fs.mkdir(path.join(tmp, 'empty'));
});

test.after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

test('flat layout: sorted classes, sorted files, PNG/JPEG/WebP decoded, grayscale expanded to RGB', async () => {
  const ds = await openImageFolder(path.join(tmp, 'flat'));
  assert.equal([...ds.classes], ['ant', 'cat', 'dog']);
  assert.is(ds.size, 5);
  assert.equal(
    Array.from({ length: 5 }, (_, i) => path.basename(ds.describe(i))),
    ['e.png', 'a.webp', 'b.png', 'c.jpg', 'd.png'],
  );
  assert.equal(
    Array.from({ length: 5 }, (_, i) => ds.label(i)),
    [0, 1, 1, 2, 2],
  );
  const png = await ds.load(2);
  assert.is(png.width, 8);
  assert.is(png.height, 6);
  assert.ok(Buffer.from(png.data).equals(Buffer.from(pattern(8, 6, 1))), 'PNG pixels');
  const webp = await ds.load(1);
  assert.ok(Buffer.from(webp.data).equals(Buffer.from(pattern(8, 6, 2))), 'lossless WebP pixels');
  const jpg = await ds.load(3);
  const ref = pattern(12, 10, 3);
  // lossy: compare on average
  const err = jpg.data.reduce((m, v, i) => m + Math.abs(v - ref[i]), 0) / ref.length;
  assert.ok(err < 6, `JPEG mean error ${err}`);
  const gray = await ds.load(4);
  assert.is(gray.data.length, 5 * 7 * 3);
  for (let p = 0; p < 35; p++) {
    assert.is(gray.data[3 * p], (p * 11 + 4) % 256);
    assert.ok(gray.data[3 * p] === gray.data[3 * p + 1] && gray.data[3 * p] === gray.data[3 * p + 2]);
  }
});

test('invert and resize on load (shorter side, cached)', async () => {
  const inv = await openImageFolder(path.join(tmp, 'flat'), { invert: true, classes: ['cat'] });
  const img = await inv.load(1);
  assert.ok(Buffer.from(img.data).equals(Buffer.from(pattern(8, 6, 1).map((v) => 255 - v))));
  const small = await openImageFolder(path.join(tmp, 'flat'), { resize: 3 });
  const r = await small.load(3);
  assert.equal([r.width, r.height], [4, 3]);
  assert.is(r.data.length, 4 * 3 * 3);
  assert.is(await small.load(3), r, 'resized images are cached');
});

test('nested layout: leaf folders at any depth, named by their path; split by top folder', async () => {
  const root = path.join(tmp, 'nested');
  const ds = await openImageFolder(root);
  assert.equal([...ds.classes], ['Alpha/character01', 'Alpha/character02', 'Beta/character01', 'Gamma/character01', 'Gamma/character03']);
  assert.is(ds.size, 15);
  const train = await openImageFolder(root, { topFolders: ['Gamma', 'Alpha'] });
  assert.equal([...train.classes], ['Alpha/character01', 'Alpha/character02', 'Gamma/character01', 'Gamma/character03']);
  const testSplit = await openImageFolder(root, { topFolders: ['Beta'] });
  assert.equal([...testSplit.classes], ['Beta/character01']);
  await rejects(() => openImageFolder(root, { topFolders: ['Delta'] }), /top-level folder\(s\) not found: Delta/);
});

test('class split files and class lists; the dataset subset helper relabels', async () => {
  const root = path.join(tmp, 'nested');
  const list = path.join(tmp, 'val.txt');
  await fs.writeFile(list, '# validation classes\nGamma/character03\n\nAlpha/character02\n');
  const ds = await openImageFolder(root, { classesFile: list });
  assert.equal([...ds.classes], ['Alpha/character02', 'Gamma/character03']);
  assert.is(ds.size, 6);
  await fs.writeFile(list, 'Alpha/character02\nAlpha/character09\n');
  await rejects(() => openImageFolder(root, { classesFile: list }), /Alpha\/character09.*|class\(es\).*val\.txt/);
  await rejects(() => openImageFolder(root, { classesFile: path.join(tmp, 'none.txt') }), /none\.txt/);
  const all = await openImageFolder(root);
  const sub = subsetByClasses(all, ['Gamma/character01', 'Alpha/character01']);
  assert.equal([...sub.classes], ['Gamma/character01', 'Alpha/character01']);
  assert.is(sub.size, 6);
  assert.is(sub.label(0), 1);
  assert.match(sub.describe(5), /Gamma.character01/);
  assert.throws(() => subsetByClasses(all, ['Nope']), /missing: Nope/);
});

test('corrupt images: one warning naming the file, skipped and counted; too many is an error', async () => {
  const root = path.join(tmp, 'corrupt');
  await fs.cp(path.join(tmp, 'nested'), root, { recursive: true });
  const bad = path.join(root, 'Beta/character01/9.png');
  await fs.writeFile(bad, Buffer.from('this is not a png file at all'));
  const warnings: string[] = [];
  const ds = await openImageFolder(root, { resize: 8, maxFailFraction: 0.1, onWarning: (m) => warnings.push(m) });
  assert.is(ds.size, 15);
  assert.is(ds.failures, 1);
  assert.is(warnings.length, 1);
  assert.ok(warnings[0].includes(bad), warnings[0]);
  // lazy mode: the failure shows at load time, once, and the next image of the class stands in
  const lazyWarnings: string[] = [];
  const lazy = await openImageFolder(root, { maxFailFraction: 0.1, onWarning: (m) => lazyWarnings.push(m) });
  const i = Array.from({ length: lazy.size }, (_, k) => k).find((k) => lazy.describe(k) === bad)!;
  const first = await lazy.load(i);
  await lazy.load(i);
  assert.is(lazyWarnings.length, 1);
  assert.is(lazy.label(i), 2);
  assert.ok(Buffer.from(first.data).equals(Buffer.from((await lazy.load(i - 3)).data)), 'replaced by the first image of its class');
  await rejects(() => openImageFolder(root, { resize: 8, onWarning: () => undefined }), /1 of 16 images unreadable, more than 1%/);
});

test('missing, empty and image-less folders are errors naming the path', async () => {
  await rejects(() => openImageFolder(path.join(tmp, 'missing')), /missing: no such folder/);
  await rejects(() => openImageFolder(path.join(tmp, 'empty')), /empty: no class folders with images/);
  const root = path.join(tmp, 'hollow');
  await writeImage(path.join(root, 'a/1.png'), 4, 4, 0, 'png');
  await fs.mkdir(path.join(root, 'b'));
  await rejects(() => findClassFolders(root), /hollow.b/);
});

test('a folder link back to the root is passed over with one warning naming it, and no class is found twice', async () => {
  const root = path.join(tmp, 'looped');
  await writeImage(path.join(root, 'a/x/1.png'), 4, 4, 0, 'png');
  await writeImage(path.join(root, 'b/2.png'), 4, 4, 0, 'png');
  await fs.symlink(root, path.join(root, 'a', 'up'));
  await fs.symlink(path.join(root, 'b'), path.join(root, 'c'));
  const warnings: string[] = [];
  const folders = await findClassFolders(root, (m) => warnings.push(m));
  assert.equal(
    folders.map((f) => f.name),
    ['a/x', 'b'],
  );
  assert.is(warnings.length, 1);
  assert.match(warnings[0], /skipped 2 folder link\(s\).*looped.a.up/);
});

skipUnless(
  test,
  existsSync(OMNIGLOT),
  `no Omniglot at ${OMNIGLOT}`,
)('Omniglot subset: 242 classes in 8 alphabets; a split by alphabet, inverted, 32 px, statistics', async () => {
  const folders = await findClassFolders(OMNIGLOT);
  assert.is(folders.length, 242);
  assert.is(
    folders.reduce((n, f) => n + f.files.length, 0),
    4840,
  );
  const alphabets = [...new Set(folders.map((f) => f.name.split('/')[0]))];
  assert.is(alphabets.length, 8);
  assert.ok(folders.some((f) => f.name === 'Greek/character07'));
  const trainAlphabets = alphabets.slice(0, 5);
  const t0 = performance.now();
  const train = await openImageFolder(OMNIGLOT, { topFolders: trainAlphabets, invert: true, resize: 32 });
  const secs = (performance.now() - t0) / 1000;
  const testSplit = await openImageFolder(OMNIGLOT, { topFolders: alphabets.slice(5) });
  assert.is(train.classes.length + testSplit.classes.length, 242);
  assert.not.ok(train.classes.some((c) => testSplit.classes.includes(c)));
  const img = await train.load(0);
  assert.equal([img.width, img.height, img.data.length], [32, 32, 32 * 32 * 3]);
  const stats = await channelStats(train, { maxImages: 500 });
  console.log(
    `  train split: ${train.classes.length} classes, ${train.size} images decoded in ${secs.toFixed(1)} s; mean ${stats.mean[0].toFixed(3)}, std ${stats.std[0].toFixed(3)}`,
  );
  // docs/algorithm.md §9.2: about 0.08 / 0.24 after inversion at ~32 px
  assert.ok(
    stats.mean.every((m) => m > 0.04 && m < 0.14),
    `mean ${stats.mean}`,
  );
  assert.ok(
    stats.std.every((s) => s > 0.17 && s < 0.32),
    `std ${stats.std}`,
  );
  assert.ok(Math.abs(stats.mean[0] - stats.mean[2]) < 1e-9, 'gray: equal channels');
});

test.run();
