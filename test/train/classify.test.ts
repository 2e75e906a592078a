// `smkd classify` and what it stands on: the background judged from an image's border, images prepared
// as the Omniglot pack's were (byte for byte against the pack where the PNG tree is there), prototype
// scores with any number of shots against a float64 reference, the command's table and JSON on a freshly
// built checkpoint, and a clear error before any work for each bad input.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { saveModel } from '../../model/index.js';
import { vitConfig } from '../../model/configs.js';
import { VisionTransformer } from '../../model/vit.js';
import { judgeBackground, modelBackground, prepareImage, readQueries, readSupportFolder, type Prediction } from '../../train/classify.js';
import { program } from '../../train/cli.js';
import { openOmniglotPack } from '../../train/data/omniglot-pack.js';
import { isModelPath, modelAndInputs } from '../../train/default-model.js';
import { prototypeScores } from '../../train/fewshot.js';
import { errorMessage, gpu, rng } from '../helpers/check.js';
import { randomImage } from '../helpers/images.js';
import { skipUnless } from '../helpers/skip.js';

const test = suite('classify');
test.before(gpu);

const OMNIGLOT = process.env.OMNIGLOT_DIR ?? path.resolve(import.meta.dirname, '../../../shared/data/omniglot/background');

/** A gray PNG: background `bg`, a bright or dark bar of `ink` across the middle third. */
async function strokeImage(file: string, w: number, h: number, bg: number, ink: number): Promise<void> {
  const px = Buffer.alloc(w * h, bg);
  for (let y = Math.floor(h / 3); y < Math.floor((2 * h) / 3); y++) for (let x = 2; x < w - 2; x++) px[y * w + x] = ink;
  await sharp(px, { raw: { width: w, height: h, channels: 1 } })
    .png()
    .toFile(file);
}

test('the background is judged from the border, and close calls are flagged', () => {
  const img = (w: number, h: number, border: number, inside: number): Uint8Array => {
    const g = new Uint8Array(w * h).fill(inside);
    const ring = Math.max(1, Math.floor(Math.min(w, h) / 16));
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (y < ring || y >= h - ring || x < ring || x >= w - ring) g[y * w + x] = border;
    return g;
  };
  // Inside pixels do not count: a light border around a black interior is a light background.
  const light = judgeBackground(img(40, 23, 240, 0), 40, 23);
  assert.equal([light.background, light.unsure, light.mean], ['light', false, 240]);
  const dark = judgeBackground(img(17, 50, 10, 255), 17, 50);
  assert.equal([dark.background, dark.unsure, dark.mean], ['dark', false, 10]);
  const grey = judgeBackground(img(33, 33, 130, 0), 33, 33);
  assert.equal([grey.background, grey.unsure], ['light', true]);
  assert.is(modelBackground({ mean: [0.08, 0.08, 0.08], std: [0.24, 0.24, 0.24] }), 'dark');
  assert.is(modelBackground({ mean: [0.9, 0.9, 0.9], std: [0.2, 0.2, 0.2] }), 'light');
});

test('a wide dark-on-light image is inverted to the model polarity, padded with its background, resized', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'classify-'));
  try {
    const file = path.join(dir, 'wide.png');
    await strokeImage(file, 60, 30, 255, 0);
    const p = await prepareImage(file, { side: 20, model: 'dark', background: 'auto' });
    assert.equal([p.inverted, p.background, p.unsure, p.image.width, p.image.height], [true, 'light', false, 20, 20]);
    const at = (x: number, y: number): number => p.image.data[3 * (y * 20 + x)];
    // The padding (top and bottom quarter) is the model's background, the bar is bright, the channels equal.
    assert.is(at(10, 0), 0);
    assert.is(at(10, 19), 0);
    assert.ok(at(10, 10) > 200, `bar ${at(10, 10)}`);
    for (let i = 0; i < 400; i++) assert.ok(p.image.data[3 * i] === p.image.data[3 * i + 1] && p.image.data[3 * i] === p.image.data[3 * i + 2]);
    // Told the background is dark, the same image is not inverted: its bar stays dark on a light field.
    const q = await prepareImage(file, { side: 20, model: 'dark', background: 'dark' });
    assert.is(q.inverted, false);
    assert.ok(q.image.data[3 * (10 * 20 + 10)] < 50);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

skipUnless(
  test,
  existsSync(OMNIGLOT),
  `no Omniglot at ${OMNIGLOT}; set OMNIGLOT_DIR`,
)('an Omniglot PNG is prepared exactly as the pack stores it', async () => {
  const pack = await openOmniglotPack(28);
  let checked = 0;
  for (const i of [0, 17, 1234, pack.test.size - 1]) {
    // 'omniglot pack: Latin/character01/0683_01.png'
    const rel = /^omniglot pack: (.+)\/([^/]+)$/.exec(pack.test.describe(i))!;
    const file = path.join(OMNIGLOT, rel[1], rel[2]);
    const p = await prepareImage(file, { side: 28, model: 'dark', background: 'auto' });
    const want = await pack.test.load(i);
    assert.is(p.inverted, true);
    let worst = 0;
    let sum = 0;
    for (let k = 0; k < want.data.length; k++) {
      worst = Math.max(worst, Math.abs(want.data[k] - p.image.data[k]));
      sum += Math.abs(want.data[k] - p.image.data[k]);
    }
    // The pack negates inside one libvips pipeline (in float), classify negates the 8-bit pixels first: rounding, no more.
    assert.ok(worst <= 2, `${file}: largest pixel difference from the pack ${worst}`);
    assert.ok(sum / want.data.length < 0.25, `${file}: mean pixel difference from the pack ${sum / want.data.length}`);
    checked++;
  }
  assert.is(checked, 4);
});

test('prototype scores: cosine to the mean of each way, any number of shots, against float64', () => {
  const r = rng(5);
  const dim = 13;
  const n = 11;
  const data = Float32Array.from({ length: n * dim }, () => r() * 2 - 1);
  const support = Int32Array.from([0, 1, 2, 3, 4, 5, 6]);
  const ways = [0, 0, 0, 1, 2, 2, 1];
  const query = Int32Array.from([7, 8, 9, 10, 2]);
  const got = prototypeScores({ data, dim, labels: new Int32Array(n) }, support, ways, 3, query);
  for (let qi = 0; qi < query.length; qi++) {
    for (let w = 0; w < 3; w++) {
      const rows = [...support].filter((_, i) => ways[i] === w);
      const proto = Array.from({ length: dim }, (_, d) => rows.reduce((a, row) => a + data[row * dim + d], 0) / rows.length);
      const x = Array.from({ length: dim }, (_, d) => data[query[qi] * dim + d]);
      const dot = proto.reduce((a, v, d) => a + v * x[d], 0);
      const want = dot / (Math.hypot(...proto) * Math.hypot(...x));
      assert.ok(Math.abs(got[qi][w] - want) < 1e-12, `query ${qi} way ${w}: ${got[qi][w]} vs ${want}`);
    }
  }
  assert.throws(() => prototypeScores({ data, dim, labels: new Int32Array(n) }, support, ways, 4, query), /way 3 has no support rows/);
});

/** support/<a|b|c>/ with 1, 2 and 1 stroke images of different bars; queries/ with copies. */
async function supportFolder(dir: string): Promise<{ support: string; queries: string[] }> {
  const support = path.join(dir, 'support');
  const bars: Record<string, [number, number][]> = {
    alpha: [[3, 0]],
    beta: [
      [0, 3],
      [1, 3],
    ],
    gamma: [[3, 3]],
  };
  const files: Record<string, string[]> = {};
  for (const [name, list] of Object.entries(bars)) {
    await mkdir(path.join(support, name), { recursive: true });
    files[name] = [];
    for (const [k, [bx, by]] of list.entries()) {
      const f = path.join(support, name, `${k}.png`);
      const px = Buffer.alloc(40 * 40, 255);
      for (let y = 0; y < 40; y++) for (let x = 0; x < 40; x++) if ((bx > 0 && Math.abs(x - 10 * bx) < 3) || (by > 0 && Math.abs(y - 10 * by + k) < 3)) px[y * 40 + x] = 0;
      await sharp(px, { raw: { width: 40, height: 40, channels: 1 } })
        .png()
        .toFile(f);
      files[name].push(f);
    }
  }
  return { support, queries: [files.alpha[0], files.gamma[0]] };
}

test("smkd classify: a query equal to a class's only support image is that class at score 1, with its runner-up; JSON", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'classify-'));
  const vit = new VisionTransformer(vitConfig('tiny', { depth: 2, imgSize: 28, patchSize: 7 })).build({ seed: 3, requiresGrad: false });
  const log = console.log;
  try {
    const { support, queries } = await supportFolder(dir);
    const ckpt = path.join(dir, 'm.safetensors');
    await saveModel(ckpt, vit);
    const lines: string[] = [];
    console.log = (m: string) => lines.push(m);
    const json = path.join(dir, 'out.json');
    await program().parseAsync(['node', 'smkd', 'classify', support, ...queries, '--model', ckpt, '--json', json, '--features', 'cls']);
    console.log = log;
    const out = JSON.parse(await readFile(json, 'utf8')) as { classes: string[]; predictions: Prediction[] };
    assert.equal(out.classes, ['alpha', 'beta', 'gamma']);
    assert.equal(
      out.predictions.map((p) => p.predicted),
      ['alpha', 'gamma'],
    );
    for (const p of out.predictions) {
      assert.ok(Math.abs(p.score - 1) < 1e-5, `score ${p.score}`);
      assert.ok(p.runnerUpScore <= p.score && p.runnerUp !== p.predicted);
      assert.is(p.scores.length, 3);
      assert.is(Math.max(...p.scores), p.score);
      assert.is(p.inverted, true, 'black on white, the model dark');
    }
    const table = lines.join('\n');
    assert.match(table, /query\s+predicted\s+score\s+runner-up\s+score/);
    assert.match(table, new RegExp(`${queries[1].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s+gamma\\s+1\\.000`));
  } finally {
    console.log = log;
    vit.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test('smkd classify: bad input is a clear error before any work', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'classify-'));
  try {
    const { support, queries } = await supportFolder(dir);
    const run = (...args: string[]): Promise<string> =>
      errorMessage(() =>
        program()
          .exitOverride()
          .parseAsync(['node', 'smkd', 'classify', ...args, '--model', path.join(dir, 'none.safetensors')]),
      );
    assert.match(await run(path.join(dir, 'nope'), queries[0]), /support folder .*nope: no such folder/);
    assert.match(await run(queries[0], queries[0]), /is not a folder/);
    const one = path.join(dir, 'one');
    await mkdir(path.join(one, 'only'), { recursive: true });
    await randomImage(path.join(one, 'only', 'a.png'), 10, 10, 1);
    assert.match(await run(one, queries[0]), /1 class folder \(only\); few-shot classification needs at least 2 classes/);
    await mkdir(path.join(support, 'empty'));
    assert.match(await run(support, queries[0]), /1 class folder\(s\) hold no images: .*empty/);
    await rm(path.join(support, 'empty'), { recursive: true });
    await assertRejects(readQueries([]), /no query images given/);
    await mkdir(path.join(dir, 'noimages'));
    assert.match(await run(support, path.join(dir, 'noimages')), /hold no images/);
    assert.match(await run(support, path.join(dir, 'missing.png')), /classify: query .*missing\.png: no such file or folder/);
    // An unreadable image is named; the model (which does not exist here) is never reached.
    const bad = path.join(dir, 'bad.png');
    await writeFile(bad, 'not a png');
    const msg = await errorMessage(() => program().parseAsync(['node', 'smkd', 'classify', support, bad, '--model', path.join(dir, 'm.safetensors')]));
    assert.match(msg, /classify: image .*bad\.png could not be decoded/);
    assert.is((await readSupportFolder(support)).classes.length, 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('which argument is the model: a .safetensors file, a run or checkpoint folder, or a missing path that is not an image', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'model-arg-'));
  try {
    await mkdir(path.join(dir, 'run'));
    await writeFile(path.join(dir, 'run', 'latest.json'), '{}');
    await mkdir(path.join(dir, 'ckpt'));
    await writeFile(path.join(dir, 'ckpt', 'teacher.safetensors'), '');
    await mkdir(path.join(dir, 'images'));
    await randomImage(path.join(dir, 'images', 'a.png'), 8, 8, 1);
    await writeFile(path.join(dir, 'm.safetensors'), '');
    for (const p of ['run', 'ckpt', 'm.safetensors', 'no-such-run', 'gone.safetensors']) assert.ok(isModelPath(path.join(dir, p)), p);
    for (const p of ['images', 'images/a.png', 'gone.png']) assert.not.ok(isModelPath(path.join(dir, p)), p);
    const given = modelAndInputs([path.join(dir, 'run'), path.join(dir, 'images')]);
    assert.equal(given, { model: path.join(dir, 'run'), inputs: [path.join(dir, 'images')] });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

async function assertRejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  assert.match(await errorMessage(() => p), re);
}

test.run();
