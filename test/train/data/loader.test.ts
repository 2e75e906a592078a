import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../../engine/rng.js';
import { evalTransform } from '../../../train/data/augment.js';
import { InMemoryDataset, type ImageDataset, type RgbImage } from '../../../train/data/dataset.js';
import { evalBatches, MultiCropLoader, type CropBatch, type MultiCropLoaderOptions } from '../../../train/data/loader.js';
import { SyntheticGlyphs } from '../../../train/data/synthetic.js';
import { rejects } from './helpers.js';

const test = suite('multi-crop loader');
const norm = { mean: [0.2, 0.2, 0.2], std: [0.2, 0.2, 0.2] } as const;
const glyphs = new SyntheticGlyphs({ split: 'train', imagesPerClass: 10 });

function options(over: Partial<MultiCropLoaderOptions> = {}): MultiCropLoaderOptions {
  return { batchSize: 8, globalCrops: 2, localCrops: 3, globalSize: 32, localSize: 16, patchSize: 4, itersPerEpoch: 5, normalize: norm, seed: 7, workers: 0, ...over };
}

/** A dataset of small random images with the given number of images per class. */
function uneven(counts: number[]): ImageDataset {
  const rng = new Rng(1);
  const images: RgbImage[] = [];
  const labels: number[] = [];
  counts.forEach((n, c) => {
    for (let k = 0; k < n; k++) {
      images.push({ width: 12, height: 12, data: Uint8Array.from({ length: 432 }, () => rng.int(0, 255)) });
      labels.push(c);
    }
  });
  return new InMemoryDataset(
    'uneven',
    counts.map((_, c) => `c${c}`),
    images,
    Int32Array.from(labels),
  );
}

function sameBatch(a: CropBatch, b: CropBatch): boolean {
  const eq = (x: ArrayBufferView, y: ArrayBufferView) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  return (
    eq(a.indices, b.indices) &&
    eq(a.labels, b.labels) &&
    a.globals.every((g, k) => eq(g, b.globals[k])) &&
    a.locals.every((l, k) => eq(l, b.locals[k])) &&
    a.masks.every((m, k) => eq(m, b.masks[k]))
  );
}

test('batch shapes, labels of the sampled images, finite normalised values', async () => {
  const loader = new MultiCropLoader(glyphs, options());
  const b = await loader.batchAt(3);
  assert.is(b.globals.length, 2);
  assert.is(b.locals.length, 3);
  assert.is(b.masks.length, 2);
  for (const g of b.globals) assert.is(g.length, 8 * 3 * 32 * 32);
  for (const l of b.locals) assert.is(l.length, 8 * 3 * 16 * 16);
  for (const m of b.masks) assert.is(m.length, 8 * 64);
  assert.is(b.indices.length, 8);
  assert.equal(
    [...b.labels],
    Array.from(b.indices, (i) => glyphs.label(i)),
  );
  assert.ok([...b.globals, ...b.locals].every((a) => a.every(Number.isFinite)));
  // normalised with mean 0.2 / std 0.2: values lie in [-1, 4]
  assert.ok(b.globals[0].every((v) => v >= -1 - 1e-5 && v <= 4 + 1e-5));
  await loader.close();
});

test('uniform sampler: no repeats within a pass, last incomplete batch dropped, passes reshuffled', () => {
  const ds = uneven([13, 20, 17]);
  const loader = new MultiCropLoader(ds, options({ batchSize: 8 }));
  assert.is(loader.sampler.batchesPerPass, 6);
  const pass = (p: number) => Array.from({ length: 6 }, (_, k) => [...loader.indicesAt(p * 6 + k)]).flat();
  const p0 = pass(0);
  const p1 = pass(1);
  assert.is(new Set(p0).size, 48);
  assert.is(new Set(p1).size, 48);
  assert.ok(p0.every((i) => i >= 0 && i < 50));
  assert.not.equal(p0, p1);
  assert.throws(() => new MultiCropLoader(ds, options({ batchSize: 51 })), /batch size 51 exceeds the 50 images/);
});

test('P x K sampler: P distinct classes, K distinct images each, class-major; classes visited once a pass', () => {
  const loader = new MultiCropLoader(glyphs, options({ batchSize: 16, sampler: 'pk', imagesPerClass: 4 }));
  assert.is(loader.sampler.batchesPerPass, 16);
  const seen: number[] = [];
  for (let it = 0; it < 16; it++) {
    const idx = [...loader.indicesAt(it)];
    const labels = idx.map((i) => glyphs.label(i));
    for (let p = 0; p < 4; p++) {
      const group = labels.slice(p * 4, p * 4 + 4);
      assert.ok(
        group.every((l) => l === group[0]),
        `batch ${it}: group ${p} mixes classes ${group}`,
      );
      assert.is(new Set(idx.slice(p * 4, p * 4 + 4)).size, 4);
      seen.push(group[0]);
    }
  }
  assert.is(new Set(seen).size, 64, 'every class once in a pass');
  assert.throws(() => new MultiCropLoader(glyphs, options({ batchSize: 10, sampler: 'pk', imagesPerClass: 4 })), /not a multiple of imagesPerClass 4/);
});

test('P x K sampler with small classes: singletons left out, short classes repeat their images', () => {
  const ds = uneven([1, 2, 5, 5, 3]);
  const loader = new MultiCropLoader(ds, options({ batchSize: 6, sampler: 'pk', imagesPerClass: 3 }));
  const sampler = loader.sampler as unknown as { excludedClasses: string[] };
  assert.equal(sampler.excludedClasses, ['c0']);
  for (let it = 0; it < 20; it++) {
    const idx = [...loader.indicesAt(it)];
    const labels = idx.map((i) => ds.label(i));
    assert.not.ok(labels.includes(0));
    for (let p = 0; p < 2; p++) {
      const group = idx.slice(p * 3, p * 3 + 3);
      const label = labels[p * 3];
      assert.ok(labels.slice(p * 3, p * 3 + 3).every((l) => l === label));
      assert.is(new Set(group).size, Math.min(3, [1, 2, 5, 5, 3][label]));
    }
  }
  assert.throws(() => new MultiCropLoader(ds, options({ batchSize: 15, sampler: 'pk', imagesPerClass: 3 })), /only 4 classes with at least 2 images/);
});

test('determinism: batchAt(it) depends only on (seed, it): across loaders, worker counts, access order', async () => {
  const its = [0, 6, 2, 11];
  const ref = new MultiCropLoader(glyphs, options({ workers: 0 }));
  const expected = await Promise.all(its.map((it) => ref.batchAt(it)));
  for (const workers of [1, 2, 2]) {
    const loader = new MultiCropLoader(glyphs, options({ workers }));
    // out of order, with prefetching in between
    for (const k of [3, 0, 2, 1]) assert.ok(sameBatch(await loader.batchAt(its[k]), expected[k]), `workers ${workers}, it ${its[k]}`);
    await loader.close();
  }
  assert.not.ok(sameBatch(expected[0], expected[1]), 'two iterations gave the same batch');
  const other = new MultiCropLoader(glyphs, options({ seed: 8 }));
  assert.not.ok(sameBatch(await other.batchAt(0), expected[0]), 'the seed is ignored');
});

test('batches smaller than or not divisible by the worker count split correctly', async () => {
  for (const batchSize of [1, 3]) {
    const inline = await new MultiCropLoader(glyphs, options({ batchSize })).batchAt(4);
    const loader = new MultiCropLoader(glyphs, options({ batchSize, workers: 2 }));
    assert.ok(sameBatch(await loader.batchAt(4), inline), `batch size ${batchSize}`);
    await loader.close();
  }
});

test('masks: within the bounds of docs/algorithm.md §4.3 (at most floor(0.5 * 64) cells, half unmasked, mean ~0.144)', async () => {
  const loader = new MultiCropLoader(glyphs, options({ batchSize: 32, localCrops: 0 }));
  let crops = 0;
  let empty = 0;
  let cells = 0;
  for (let it = 0; it < 25; it++) {
    const b = await loader.batchAt(it);
    for (const m of b.masks) {
      for (let k = 0; k < 32; k++) {
        const c = m.subarray(k * 64, (k + 1) * 64).reduce((s, v) => s + v, 0);
        assert.ok(c <= 32, `a crop has ${c} masked cells`);
        assert.ok(m.subarray(k * 64, (k + 1) * 64).every((v) => v === 0 || v === 1));
        crops++;
        cells += c;
        if (c === 0) empty++;
      }
    }
  }
  assert.ok(Math.abs(empty / crops - 0.5) < 0.06, `unmasked fraction ${empty / crops}`);
  assert.ok(Math.abs(cells / crops / 64 - 0.144) < 0.02, `mean masked fraction ${cells / crops / 64}`);
});

test('masks are empty before predStartEpoch (virtual epochs of itersPerEpoch iterations)', async () => {
  const loader = new MultiCropLoader(glyphs, options({ itersPerEpoch: 3, predStartEpoch: 2 }));
  assert.equal(
    [0, 2, 3, 5, 6].map((it) => loader.epochOf(it)),
    [0, 0, 1, 1, 2],
  );
  for (let it = 0; it < 6; it++)
    assert.ok(
      (await loader.batchAt(it)).masks.every((m) => m.every((v) => v === 0)),
      `it ${it} masked`,
    );
  let any = false;
  for (let it = 6; it < 9; it++) any ||= (await loader.batchAt(it)).masks.some((m) => m.some((v) => v === 1));
  assert.ok(any, 'no masks from epoch 2 on');
});

test('close() stops the workers; later requests are refused', async () => {
  const loader = new MultiCropLoader(glyphs, options({ workers: 2 }));
  await loader.batchAt(0);
  await loader.close();
  await rejects(() => loader.batchAt(1), /after close/);
});

test('evaluation batches: every image in order through the evaluation transform, in chunks', async () => {
  const ds = new SyntheticGlyphs({ split: 'val', imagesPerClass: 5 });
  const chunks = [];
  for await (const b of evalBatches(ds, { size: 32, normalize: norm, batchSize: 30 })) chunks.push(b);
  assert.equal(
    chunks.map((c) => c.count),
    [30, 30, 20],
  );
  assert.is(chunks[2].images.length, 20 * 3 * 32 * 32);
  assert.equal(
    chunks.flatMap((c) => [...c.indices]),
    [...Array(80).keys()],
  );
  assert.equal(
    [...chunks[1].labels],
    Array.from({ length: 30 }, (_, k) => ds.label(30 + k)),
  );
  const one = new Float32Array(3 * 32 * 32);
  evalTransform(ds.image(37), 32, norm, one);
  assert.equal([...chunks[1].images.subarray(7 * 3072, 8 * 3072)], [...one]);
  const picked = [];
  for await (const b of evalBatches(ds, { size: 24, normalize: norm, indices: [5, 1] })) picked.push(b);
  assert.equal([...picked[0].indices], [5, 1]);
  assert.is(picked[0].images.length, 2 * 3 * 24 * 24);
});

test.run();
