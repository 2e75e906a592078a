// The generic DataLoader: every sample exactly once per epoch, in a new seeded order each epoch (the same
// in every run), the last short batch kept or dropped, rows equal to the source's; an ImageDataset's
// batches equal the evaluation transform's; bad settings refused.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DataLoader, evalBatches, NORMALIZATION, SyntheticGlyphs, type DataBatch } from '../../train/data/index.js';

const test = suite('data loader');

async function epoch(loader: DataLoader): Promise<DataBatch[]> {
  const out: DataBatch[] = [];
  for await (const b of loader) out.push(b);
  return out;
}

const n = 23;
const shape = [2, 3];
const source = { data: Float32Array.from({ length: n * 6 }, (_, i) => i + 0.5), shape, labels: Int32Array.from({ length: n }, (_, i) => i % 4) };

test('arrays: each sample once per epoch, reshuffled every epoch from the seed, rows and labels from the source', async () => {
  const loader = new DataLoader(source, { batchSize: 5, seed: 3 });
  assert.is(loader.length, 5);
  const orders: number[][] = [];
  for (let e = 0; e < 3; e++) {
    const batches = await epoch(loader);
    assert.equal(
      batches.map((b) => b.shape),
      [5, 5, 5, 5, 3].map((c) => [c, 2, 3]),
    );
    const order = batches.flatMap((b) => Array.from(b.indices));
    assert.equal(
      [...order].sort((a, b) => a - b),
      [...Array(n).keys()],
      `epoch ${e}: every sample once`,
    );
    for (const b of batches)
      b.indices.forEach((i, k) => {
        assert.equal(Array.from(b.data.subarray(k * 6, (k + 1) * 6)), Array.from(source.data.subarray(i * 6, (i + 1) * 6)));
        assert.is(b.labels[k], i % 4);
      });
    orders.push(order);
  }
  assert.not.equal(orders[0], orders[1], 'a new order each epoch');
  const again = new DataLoader(source, { batchSize: 5, seed: 3 });
  for (const o of orders)
    assert.equal(
      (await epoch(again)).flatMap((b) => Array.from(b.indices)),
      o,
      'the same orders in another run',
    );
  const other = await epoch(new DataLoader(source, { batchSize: 5, seed: 4 }));
  assert.not.equal(
    other.flatMap((b) => Array.from(b.indices)),
    orders[0],
  );
});

test('dropLast, no shuffle, and stopping early', async () => {
  const dropped = await epoch(new DataLoader(source, { batchSize: 5, dropLast: true, shuffle: false }));
  assert.equal(
    dropped.map((b) => Array.from(b.indices)),
    [0, 5, 10, 15].map((s) => [s, s + 1, s + 2, s + 3, s + 4]),
  );
  const loader = new DataLoader(source, { batchSize: 4 });
  for await (const b of loader) {
    assert.is(b.shape[0], 4);
    break;
  }
});

test("an ImageDataset: batches equal the evaluation transform's images of the same samples", async () => {
  const ds = new SyntheticGlyphs({ split: 'train', size: 16, classes: { train: 3, val: 0, test: 0 }, imagesPerClass: 5 });
  const loader = new DataLoader(ds, { batchSize: 4, size: 16, normalize: NORMALIZATION.imagenet, seed: 1 });
  const batches = await epoch(loader);
  assert.is(batches.length, 4);
  for (const b of batches) {
    assert.equal(b.shape, [b.indices.length, 3, 16, 16]);
    for await (const ref of evalBatches(ds, { size: 16, normalize: NORMALIZATION.imagenet, indices: b.indices, batchSize: 64 })) {
      assert.equal(Array.from(b.data), Array.from(ref.images));
      assert.equal(Array.from(b.labels), Array.from(ref.labels));
    }
  }
});

test('bad settings are refused, naming them', () => {
  assert.throws(() => new DataLoader(source, { batchSize: 0 }), /batchSize must be a whole number >= 1, got 0/);
  assert.throws(() => new DataLoader({ ...source, shape: [5] }, { batchSize: 2 }), /138 values are not 23 samples \(one per label\) of shape \[5\]/);
  const ds = new SyntheticGlyphs({ split: 'train', size: 16, classes: { train: 2, val: 0, test: 0 }, imagesPerClass: 2 });
  assert.throws(() => new DataLoader(ds, { batchSize: 2 }), /needs opts\.size and opts\.normalize/);
});

test.run();
