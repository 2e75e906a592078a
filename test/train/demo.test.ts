// The demo end to end at a toy budget on the packed Omniglot subset: summary.json holds the rows the
// issue asks for (random, pixels, phase 1, phase 2 at 5-way 1-shot, 5-way 5-shot and 20-way 1-shot),
// the pixel rows equal the raw-pixel evaluation done directly on the same episodes, the phase rows name
// their checkpoints, the learning curve is an SVG, and the pictures of the trained model are written.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { preset, validateConfig, type TrainConfig } from '../../train/config.js';
import { DEMO_SETTINGS, runDemo, type DemoSummary } from '../../train/demo.js';
import { evaluatePixels } from '../../train/evaluate.js';
import { openSplits } from '../../train/sources.js';
import { gpu } from '../helpers/check.js';

const test = suite('demo');
test.before(gpu);

function toy(phase: 1 | 2, base: string): TrainConfig {
  const p = preset('omniglot', phase);
  return validateConfig({
    ...p,
    workers: 0,
    out: path.join(base, `phase${phase}`),
    ...(phase === 2 ? { init: path.join(base, 'phase1') } : {}),
    model: { ...p.model, depth: 1 },
    batch: { ...p.batch, size: 8, classes: 4, perClass: 2 },
    schedule: { ...p.schedule, epochs: 2, itersPerEpoch: 2, warmupEpochs: 1 },
    eval: { ...p.eval, everyEpochs: 1, episodes: 30, maxPerClass: 20 },
  });
}

async function pngSize(file: string): Promise<[number, number]> {
  const m = await sharp(file).metadata();
  assert.is(m.format, 'png', file);
  return [m.width ?? 0, m.height ?? 0];
}

test('summary.json: four models x three settings on the same episodes, checkpoints, a learning curve', async () => {
  const base = await mkdtemp(path.join(tmpdir(), 'demo-'));
  const log = console.log;
  try {
    console.log = () => undefined;
    const p1 = toy(1, base);
    const summary = await runDemo(p1, toy(2, base), base);
    console.log = log;
    const saved = JSON.parse(await readFile(path.join(base, 'summary.json'), 'utf8')) as DemoSummary;
    assert.equal(saved, summary);
    assert.ok(saved.seconds > 0);
    const models = ['random', 'pixels', 'phase1', 'phase2'];
    assert.equal(
      saved.rows.map((r) => `${r.model} ${r.ways}w${r.shots}s`),
      models.flatMap((m) => DEMO_SETTINGS.map((s) => `${m} ${s.ways}w${s.shots}s`)),
    );
    for (const r of saved.rows) {
      assert.is(r.episodes, 30);
      assert.ok(r.mean > 0 && r.mean <= 100 && r.ci95 > 0, JSON.stringify(r));
      if (r.model.startsWith('phase')) assert.ok(r.checkpoint && existsSync(r.checkpoint), `${r.model} names its checkpoint`);
      else assert.is(r.checkpoint, null);
    }
    const splits = await openSplits(p1.data, p1.seed);
    for (const s of DEMO_SETTINGS) {
      const direct = await evaluatePixels(splits.test, {
        size: 28,
        normalize: splits.normalize,
        resizeRatio: 1,
        ways: s.ways,
        shots: [s.shots],
        queries: 15,
        episodes: 30,
        maxPerClass: 20,
        seed: p1.seed,
      });
      const row = saved.rows.find((r) => r.model === 'pixels' && r.ways === s.ways && r.shots === s.shots)!;
      assert.is(row.mean, direct.rows[0].mean);
    }
    const svg = await readFile(path.join(base, 'learning-curve.svg'), 'utf8');
    assert.match(svg, /^<svg/);
    assert.match(svg, /augmented crops seen/);
    assert.match(svg, /raw pixels/);
    // The pictures of the phase-2 teacher: attention of four test images (two heads each), a match, the map, the curves.
    const attention = (await readdir(path.join(base, 'attention'))).sort();
    assert.is(attention.length, 4);
    for (const f of attention) assert.equal(await pngSize(path.join(base, 'attention', f)), [3 * 224 + 2 * 4, 224]);
    assert.is((await readdir(path.join(base, 'images'))).length, 5, 'the four images and a second of the first class');
    assert.equal(await pngSize(path.join(base, 'matches.png')), [2 * 224 + 32, 224]);
    assert.match(await readFile(path.join(base, 'embedding.svg'), 'utf8'), /^<svg[\s\S]*UMAP 1/);
    assert.match(await readFile(path.join(base, 'curves.svg'), 'utf8'), /^<svg[\s\S]*phase1[\s\S]*phase2/);
  } finally {
    console.log = log;
    await rm(base, { recursive: true, force: true });
  }
});

test.run();
