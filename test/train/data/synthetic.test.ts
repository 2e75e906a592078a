import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../../engine/rng.js';
import { SyntheticGlyphs } from '../../../train/data/synthetic.js';

const test = suite('synthetic glyphs');

test('splits: 64 / 16 / 20 disjoint classes, labels by class, 32 px RGB', () => {
  const splits = (['train', 'val', 'test'] as const).map((split) => new SyntheticGlyphs({ split, imagesPerClass: 5 }));
  assert.equal(
    splits.map((s) => s.classes.length),
    [64, 16, 20],
  );
  const names = splits.flatMap((s) => s.classes);
  assert.is(new Set(names).size, 100);
  const all = new SyntheticGlyphs({ split: 'all', imagesPerClass: 5 });
  assert.equal([...all.classes], names);
  const ds = splits[1];
  assert.is(ds.size, 80);
  assert.is(ds.label(0), 0);
  assert.is(ds.label(79), 15);
  const img = ds.image(7);
  assert.is(img.width, 32);
  assert.is(img.height, 32);
  assert.is(img.data.length, 32 * 32 * 3);
  assert.throws(() => ds.label(80), /index 80 outside/);
});

test('deterministic from the seed; a class draws the same glyph whichever split it is opened through', async () => {
  const a = new SyntheticGlyphs({ seed: 5, split: 'test', imagesPerClass: 4 });
  const b = new SyntheticGlyphs({ seed: 5, split: 'test', imagesPerClass: 4 });
  const c = new SyntheticGlyphs({ seed: 6, split: 'test', imagesPerClass: 4 });
  const all = new SyntheticGlyphs({ seed: 5, split: 'all', imagesPerClass: 4 });
  for (const i of [0, 3, 41, 79]) {
    const x = (await a.load(i)).data;
    assert.ok(Buffer.from(x).equals(Buffer.from((await b.load(i)).data)), `image ${i} differs between two instances`);
    assert.not.ok(Buffer.from(x).equals(Buffer.from((await c.load(i)).data)), `image ${i} ignores the seed`);
    assert.ok(Buffer.from(x).equals(Buffer.from(all.image(80 * 4 + i).data)), `image ${i} depends on the split`);
  }
  // drawings of a class differ from each other
  assert.not.ok(Buffer.from(a.image(0).data).equals(Buffer.from(a.image(1).data)));
});

/** Mean accuracy of 5-way prototype (nearest class mean, Euclidean) episodes, 15 queries a class. */
function prototypeAccuracy(feats: Float64Array[], classes: number, perClass: number, shots: number, episodes: number): number {
  const rng = new Rng(1);
  let acc = 0;
  for (let e = 0; e < episodes; e++) {
    const chosen = rng.shuffle([...Array(classes).keys()]).slice(0, 5);
    const protos: Float64Array[] = [];
    const queries: [Float64Array, number][] = [];
    chosen.forEach((c, k) => {
      const imgs = rng.shuffle([...Array(perClass).keys()]).map((j) => feats[c * perClass + j]);
      const p = new Float64Array(imgs[0].length);
      for (let s = 0; s < shots; s++) imgs[s].forEach((v, d) => (p[d] += v / shots));
      protos.push(p);
      for (let q = shots; q < shots + 15; q++) queries.push([imgs[q], k]);
    });
    let ok = 0;
    for (const [q, k] of queries) {
      let best = -1;
      let bestD = Infinity;
      protos.forEach((p, j) => {
        let d = 0;
        for (let i = 0; i < p.length; i++) d += (p[i] - q[i]) ** 2;
        if (d < bestD) [best, bestD] = [j, d];
      });
      if (best === k) ok++;
    }
    acc += ok / queries.length;
  }
  return acc / episodes;
}

test('learnable but not trivial: raw-pixel prototypes beat chance clearly, better features do better', () => {
  const ds = new SyntheticGlyphs({ split: 'test', imagesPerClass: 30 });
  const raw = Array.from({ length: ds.size }, (_, i) => Float64Array.from(ds.image(i).data, (v) => v / 255));
  // a slightly better hand-made feature: colour removed, per-image standardised intensity
  const shape = raw.map((f) => {
    const g = Float64Array.from({ length: f.length / 3 }, (_, p) => f[3 * p] + f[3 * p + 1] + f[3 * p + 2]);
    const m = g.reduce((s, v) => s + v, 0) / g.length;
    const sd = Math.sqrt(g.reduce((s, v) => s + (v - m) ** 2, 0) / g.length) + 1e-6;
    return g.map((v) => (v - m) / sd);
  });
  const raw1 = prototypeAccuracy(raw, 20, 30, 1, 150);
  const raw5 = prototypeAccuracy(raw, 20, 30, 5, 150);
  const shape1 = prototypeAccuracy(shape, 20, 30, 1, 150);
  console.log(`  raw pixels 1-shot ${raw1.toFixed(3)}, 5-shot ${raw5.toFixed(3)}; gray standardised 1-shot ${shape1.toFixed(3)} (chance 0.2)`);
  assert.ok(raw1 > 0.3, `raw 1-shot ${raw1} is too close to chance (0.2)`);
  assert.ok(raw5 > 0.5, `raw 5-shot ${raw5}`);
  assert.ok(raw1 < 0.85, `raw 1-shot ${raw1}: the task is trivial`);
  assert.ok(shape1 > raw1 + 0.1, `shape features ${shape1} vs raw ${raw1}`);
});

test.run();
