import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openCifar100 } from '../../../train/data/cifar100.js';
import { rejects } from './helpers.js';
import { CIFAR_FS_CLASSES, FC100_SUPERCLASSES } from '../../../train/data/cifar-splits.js';
import { COARSE_NAMES, FC100_COARSE_INDICES, FINE_NAMES, SUPERCLASSES } from '../../ref/cifar100.js';

const test = suite('cifar100');
const PER_CLASS = { train: 3, test: 1 };
let dir = '';

const coarseOf = new Map(Object.entries(SUPERCLASSES).flatMap(([s, fines]) => fines.map((f) => [f, s] as const)));

/** Pixel value of record r, channel c, pixel p: different for every (record, channel) and position. */
const pixel = (file: number, r: number, c: number, p: number) => (file * 101 + r * 7 + c * 50 + p) % 256;

test.before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cifar100-test-'));
  await fs.writeFile(path.join(dir, 'fine_label_names.txt'), FINE_NAMES.join('\n') + '\n');
  await fs.writeFile(path.join(dir, 'coarse_label_names.txt'), COARSE_NAMES.join('\n') + '\n');
  for (const [k, file] of (['train', 'test'] as const).entries()) {
    const n = 100 * PER_CLASS[file];
    const bytes = new Uint8Array(n * 3074);
    for (let r = 0; r < n; r++) {
      const fine = r % 100;
      bytes[r * 3074] = COARSE_NAMES.indexOf(coarseOf.get(FINE_NAMES[fine])!);
      bytes[r * 3074 + 1] = fine;
      for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) bytes[r * 3074 + 2 + c * 1024 + p] = pixel(k, r, c, p);
    }
    await fs.writeFile(path.join(dir, `${file}.bin`), bytes);
  }
});

test.after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

test('the split tables: sizes, disjoint, covering CIFAR-100; FC100 equals the published coarse indices', () => {
  const fs_ = CIFAR_FS_CLASSES;
  assert.equal([fs_.train.length, fs_.val.length, fs_.test.length], [64, 16, 20]);
  assert.equal([...fs_.train, ...fs_.val, ...fs_.test].sort(), FINE_NAMES);
  const fc = FC100_SUPERCLASSES;
  assert.equal([fc.train.length, fc.val.length, fc.test.length], [12, 4, 4]);
  for (const part of ['train', 'val', 'test'] as const) {
    assert.equal([...fc[part]].sort(), FC100_COARSE_INDICES[part].map((i) => COARSE_NAMES[i]).sort(), part);
  }
});

test('whole set: both files, labels from the fine byte, planar records become HWC', async () => {
  const ds = await openCifar100(dir);
  assert.is(ds.size, 400);
  assert.equal([...ds.classes], FINE_NAMES);
  // train.bin records first, then test.bin
  const r = 123;
  assert.is(ds.label(r), r % 100);
  const img = await ds.load(r);
  assert.is(img.width, 32);
  assert.is(img.height, 32);
  for (const p of [0, 1, 33, 1023]) for (let c = 0; c < 3; c++) assert.is(img.data[p * 3 + c], pixel(0, r, c, p));
  const t = await ds.load(300 + 5);
  assert.is(t.data[7 * 3 + 2], pixel(1, 5, 2, 7));
  assert.match(ds.describe(305), /test\.bin#5/);
  const trainOnly = await openCifar100(dir, { files: ['train'] });
  assert.is(trainOnly.size, 300);
});

test('CIFAR-FS splits: sorted class names, all 600-style images of each class, 64 / 16 / 20', async () => {
  const parts = await Promise.all((['train', 'val', 'test'] as const).map((part) => openCifar100(dir, { split: { benchmark: 'cifar-fs', part } })));
  assert.equal(
    parts.map((p) => p.classes.length),
    [64, 16, 20],
  );
  assert.equal([...parts[2].classes], [...CIFAR_FS_CLASSES.test].sort());
  for (const p of parts) {
    assert.is(p.size, p.classes.length * 4);
    for (let i = 0; i < p.size; i += 7) {
      // the record's fine label byte names the class the split calls it
      const rec = Number(/#(\d+)$/.exec(p.describe(i))![1]);
      assert.is(p.classes[p.label(i)], FINE_NAMES[rec % 100]);
    }
  }
  assert.is(parts[0].name, 'cifar-fs-train');
});

test('FC100 splits follow the superclasses read from the data: 60 / 20 / 20 classes', async () => {
  const parts = await Promise.all((['train', 'val', 'test'] as const).map((part) => openCifar100(dir, { split: { benchmark: 'fc100', part } })));
  assert.equal(
    parts.map((p) => p.classes.length),
    [60, 20, 20],
  );
  (['train', 'val', 'test'] as const).forEach((part, k) => {
    const supers = new Set(FC100_COARSE_INDICES[part].map((i) => COARSE_NAMES[i]));
    for (const c of parts[k].classes) assert.ok(supers.has(coarseOf.get(c)!), `${c} (${coarseOf.get(c)}) in FC100 ${part}`);
  });
  assert.is(new Set(parts.flatMap((p) => p.classes)).size, 100);
});

test('errors name the file: missing files, truncated records', async () => {
  await rejects(() => openCifar100(path.join(dir, 'nope')), /fine_label_names\.txt/);
  const bad = await fs.mkdtemp(path.join(os.tmpdir(), 'cifar100-bad-'));
  try {
    await fs.copyFile(path.join(dir, 'fine_label_names.txt'), path.join(bad, 'fine_label_names.txt'));
    await fs.writeFile(path.join(bad, 'train.bin'), new Uint8Array(3074 + 10));
    await rejects(() => openCifar100(bad, { files: ['train'] }), /train\.bin holds 3084 bytes/);
    // Both files wrong: the first in file order is named, every time.
    for (let k = 0; k < 5; k++) await rejects(() => openCifar100(bad), /train\.bin holds 3084 bytes/);
    await rejects(() => openCifar100(bad, { files: ['test'] }), /test\.bin/);
  } finally {
    await fs.rm(bad, { recursive: true, force: true });
  }
});

test.run();
