// Mixed use with PyTorch (docs/interop.md): files laid out as timm, DINO and DINO/iBOT training
// checkpoints save them load into the library's ViT by name, and what the library saves has exactly
// timm's keys and shapes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readSafetensors, writeSafetensors, type NamedArray } from '../../engine/index.js';
import { loadModel, saveModel, VisionTransformer, vitConfig } from '../../model/index.js';
import { gpu, randArray, rng } from '../helpers/check.js';
import { timmVitShapes } from './timm.js';

const test = suite('interop');
let dir = '';
// Small and awkward: 3 heads of 8, a 3x3 grid of 5-pixel patches, one block.
const config = vitConfig('tiny', { imgSize: 15, patchSize: 5, embedDim: 24, numHeads: 3, depth: 1 });
const CLASSES = 7;

/** A state dict in timm's layout with seeded random values, under `prefix`, written to `file`. */
async function timmFile(file: string, prefix: string, classes: number, seed: number): Promise<Map<string, Float32Array>> {
  const r = rng(seed);
  const values = new Map<string, Float32Array>();
  const tensors: [string, NamedArray][] = [];
  for (const [k, shape] of timmVitShapes({ ...config, classes })) {
    const data = Float32Array.from(
      randArray(
        shape.reduce((a, b) => a * b, 1),
        r,
      ),
    );
    values.set(k, data);
    tensors.push([prefix + k, { data, shape }]);
  }
  await writeSafetensors(file, tensors);
  return values;
}

async function assertLoaded(module: VisionTransformer, expected: Map<string, Float32Array>, what: string): Promise<void> {
  const sd = await module.stateDict();
  for (const [k, v] of sd) {
    const want = expected.get(k);
    assert.ok(want, `${what}: ${k} has no value in the file`);
    assert.equal(Array.from(v.data), Array.from(want), `${what}: ${k} differs`);
  }
}

test.before(async () => {
  await gpu();
  dir = await mkdtemp(path.join(tmpdir(), 'smkd-interop-'));
});

test.after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a timm/DINO backbone state dict loads strictly into VisionTransformer by name', async () => {
  const file = path.join(dir, 'backbone.safetensors');
  const values = await timmFile(file, '', 0, 1);
  const vit = new VisionTransformer(config).build({ seed: 9 });
  assert.equal(await loadModel(file, vit), { missing: [], unexpected: [] });
  await assertLoaded(vit, values, 'timm backbone');
  vit.dispose();
});

test('DDP and training-checkpoint prefixes (module., module.backbone., backbone.) are fitted', async () => {
  for (const prefix of ['module.', 'module.backbone.', 'backbone.']) {
    const file = path.join(dir, `prefixed.safetensors`);
    const values = await timmFile(file, prefix, 0, 2);
    const vit = new VisionTransformer(config).build({ seed: 9 });
    assert.equal(await loadModel(file, vit), { missing: [], unexpected: [] }, prefix);
    await assertLoaded(vit, values, prefix);
    vit.dispose();
  }
});

test('a timm classifier loads whole into a ViT with a head, and non-strictly into a bare backbone', async () => {
  const file = path.join(dir, 'classifier.safetensors');
  const values = await timmFile(file, '', CLASSES, 3);
  const clf = new VisionTransformer({ ...config, numClasses: CLASSES }).build({ seed: 9 });
  await loadModel(file, clf);
  await assertLoaded(clf, values, 'timm classifier');
  const vit = new VisionTransformer(config).build({ seed: 9 });
  const err = await loadModel(file, vit).then(
    () => '',
    (e: Error) => e.message,
  );
  assert.match(err, /unexpected keys \(2\): head\.weight, head\.bias/);
  assert.equal(await loadModel(file, vit, false), { missing: [], unexpected: ['head.weight', 'head.bias'] });
  await assertLoaded(vit, values, 'bare backbone');
  clf.dispose();
  vit.dispose();
});

test("saveModel writes exactly timm's keys and shapes (backbone and classifier)", async () => {
  for (const classes of [0, CLASSES]) {
    const m = classes ? new VisionTransformer({ ...config, numClasses: classes }).build({ seed: 4 }) : new VisionTransformer(config).build({ seed: 4 });
    const file = path.join(dir, `ours-${classes}.safetensors`);
    await saveModel(file, m);
    const saved = await readSafetensors(file);
    const expected = timmVitShapes({ ...config, classes });
    assert.equal([...saved.tensors.keys()].sort(), [...expected.keys()].sort());
    for (const [k, t] of saved.tensors) {
      assert.equal(t.shape, expected.get(k), k);
      assert.is(t.dtype, 'F32', k);
    }
    m.dispose();
  }
});

test.run();
