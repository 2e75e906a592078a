import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { alphabetSplits, OMNIGLOT_SPLITS, openOmniglotPack, packDir, packedSizes } from '../../../train/data/omniglot-pack.js';
import { RotatedClassesDataset, rotateQuarter } from '../../../train/data/rotated-classes.js';
import { openSplits } from '../../../train/sources.js';
import { preset } from '../../../train/config.js';
import { skipUnless } from '../../helpers/skip.js';

const test = suite('packed Omniglot');
const OMNIGLOT = process.env.OMNIGLOT_DIR ?? path.resolve(import.meta.dirname, '../../../../shared/data/omniglot/background');

test('the pack ships at 28 px with its licence, split by alphabet, 20 drawings per character', async () => {
  assert.ok(existsSync(path.join(packDir(), 'LICENSE')));
  assert.ok(packedSizes().includes(28));
  const s = await openOmniglotPack(28);
  assert.equal([s.train.classes.length, s.val.classes.length, s.test.classes.length], [133, 24, 85]);
  assert.equal([s.train.size, s.val.size, s.test.size], [2660, 480, 1700]);
  for (const [name, ds] of Object.entries(s)) {
    const alphabets = new Set(ds.classes.map((c) => c.split('/')[0]));
    for (const a of alphabets) assert.is(OMNIGLOT_SPLITS[a], name, `${a} is a ${OMNIGLOT_SPLITS[a]} alphabet`);
  }
  const img = await s.test.load(0);
  assert.equal([img.width, img.height, img.data.length], [28, 28, 28 * 28 * 3]);
  // Bright strokes on black: most pixels are background, the channels are equal.
  let dark = 0;
  for (let p = 0; p < 28 * 28; p++) {
    assert.is(img.data[3 * p], img.data[3 * p + 2]);
    if (img.data[3 * p] < 32) dark++;
  }
  assert.ok(dark > 0.6 * 28 * 28, `${dark} dark pixels`);
});

test('a size that was not packed names the packed sizes and the command that packs it', async () => {
  try {
    await openOmniglotPack(33);
    assert.unreachable('no pack at 33 px');
  } catch (e) {
    assert.match((e as Error).message, /no Omniglot pack at 33 px.*packed sizes: 28.*pack-omniglot/s);
  }
});

test('the omniglot preset reads the pack', async () => {
  const packed = await openSplits(preset('omniglot', 1).data, 0);
  assert.is(packed.test.describe(0), 'omniglot pack: Latin/character01/' + packed.test.describe(0).split('/').pop());
});

test('other splits of the pack by alphabet: the held-out twin (train + Greek), every alphabet, and errors that name the alphabet', async () => {
  const train = ['Balinese', 'Early_Aramaic', 'Japanese_(katakana)', 'Korean'];
  const twin = await openSplits({ ...preset('omniglot', 1).data, trainSplit: [...train, 'Greek'], valSplit: [] }, 0);
  assert.equal([twin.train.classes.length, twin.val.size, twin.test.classes.length], [157, 0, 85]);
  assert.ok(twin.train.classes.includes('Greek/character01'));
  const all = await openSplits({ ...preset('omniglot', 1).data, trainSplit: Object.keys(OMNIGLOT_SPLITS), valSplit: [], testSplit: [] }, 0);
  assert.equal([all.train.classes.length, all.train.size, all.val.size, all.test.size], [242, 4840, 0, 0]);
  // Unnamed alphabets are left out; a split not given keeps the pack's alphabets that no other split took.
  assert.equal(
    [...alphabetSplits(OMNIGLOT_SPLITS, { test: ['Latin'] }).entries()].filter(([, s]) => s === 'test'),
    [['Latin', 'test']],
  );
  assert.is(alphabetSplits(OMNIGLOT_SPLITS, { test: ['Latin'] }).get('Sanskrit'), undefined);
  assert.throws(() => alphabetSplits(OMNIGLOT_SPLITS, { train: ['Klingon'] }), /no alphabet 'Klingon' \(it has Balinese, /);
  assert.throws(() => alphabetSplits(OMNIGLOT_SPLITS, { train: ['Greek'], val: ['Greek'] }), /'Greek' is in both data\.trainSplit and data\.valSplit/);
  try {
    await openSplits({ ...preset('omniglot', 1).data, trainSplit: 'classes.txt' }, 0);
    assert.unreachable('a class-list file for the pack');
  } catch (e) {
    assert.match((e as Error).message, /data\.trainSplit: for the packed Omniglot subset give a list of its alphabets/);
  }
});

test('rotated classes: each quarter turn of a training class is a class of its own; turns against index arithmetic', async () => {
  // A 3 x 2 image with distinct pixels: turning clockwise sends (x, y) to (h - 1 - y, x).
  const w = 3;
  const h = 2;
  const img = { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => i) };
  const px = (im: { width: number; data: Uint8Array }, x: number, y: number): number[] => [...im.data.subarray(3 * (y * im.width + x), 3 * (y * im.width + x) + 3)];
  const r1 = rotateQuarter(img, 1);
  assert.equal([r1.width, r1.height], [h, w]);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) assert.equal(px(r1, h - 1 - y, x), px(img, x, y));
  const r2 = rotateQuarter(img, 2);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) assert.equal(px(r2, w - 1 - x, h - 1 - y), px(img, x, y));
  assert.equal(rotateQuarter(rotateQuarter(img, 3), 1).data, img.data);
  assert.equal(rotateQuarter(r2, 2).data, img.data);

  const base = (await openOmniglotPack(28)).val;
  const rot = new RotatedClassesDataset(base);
  const C = base.classes.length;
  assert.equal([rot.size, rot.classes.length], [4 * base.size, 4 * C]);
  const i = 37;
  for (const k of [0, 1, 2, 3]) {
    const j = k * base.size + i;
    assert.is(rot.label(j), k * C + base.label(i));
    assert.equal((await rot.load(j)).data, rotateQuarter(await base.load(i), k).data);
  }
  assert.is(rot.classes[2 * C + base.label(i)], `${base.classes[base.label(i)]} (turned 180°)`);
  assert.match(rot.describe(3 * base.size + i), /turned 270°$/);
  const cfg = preset('omniglot', 1);
  const splits = await openSplits({ ...cfg.data, rotatedClasses: true }, 0);
  const plain = await openSplits(cfg.data, 0);
  assert.equal([splits.train.classes.length, splits.val.classes.length], [4 * 133, 24]);
  // Turned copies change no statistic: the normalisation is the unturned split's.
  assert.equal(splits.normalize, plain.normalize);
});

skipUnless(
  test,
  existsSync(OMNIGLOT),
  `no Omniglot at ${OMNIGLOT}; set OMNIGLOT_DIR`,
)('the pack holds the same images as decoding the PNG folder (when ../shared/data is present)', async () => {
  const cfg = preset('omniglot', 1);
  const packed = await openSplits(cfg.data, 0);
  // One image per split, decoded and resized as scripts/pack-omniglot.ts does.
  for (const ds of [packed.train, packed.val, packed.test]) {
    const i = ds.size - 1;
    const file = path.join(OMNIGLOT, ds.describe(i).replace('omniglot pack: ', ''));
    const want = await sharp(file).greyscale().negate({ alpha: false }).resize(28, 28, { kernel: 'lanczos3', fit: 'fill' }).raw().toBuffer();
    const got = await ds.load(i);
    for (let p = 0; p < 28 * 28; p++) assert.is(got.data[3 * p], want[p], `${file} pixel ${p}`);
  }
  // The folder itself splits the same way.
  const folder = await openSplits({ ...cfg.data, path: OMNIGLOT, invert: true }, 0);
  assert.equal([folder.train.classes, folder.val.classes, folder.test.classes], [packed.train.classes, packed.val.classes, packed.test.classes]);
});

test.run();
