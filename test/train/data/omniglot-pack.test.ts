import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { OMNIGLOT_SPLITS, openOmniglotPack, packDir, packedSizes } from '../../../train/data/omniglot-pack.js';
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
