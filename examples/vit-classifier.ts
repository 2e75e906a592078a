// A supervised ViT classifier from the library's public entry points alone (no SMKD): timm's
// VisionTransformer with a linear head on the [cls] token, trained with AdamW on the synthetic glyphs
// or on Omniglot's background characters, with a held-out accuracy at the end.
//   npx tsx examples/vit-classifier.ts                                     synthetic glyphs
//   npx tsx examples/vit-classifier.ts ../shared/data/omniglot/background  Omniglot
//   options (defaults): --classes 10 --steps 300 --batch 32 --lr 3e-3 --patch 8 --save FILE.safetensors
// In your own project the imports are 'smkd-webgpu/engine', 'smkd-webgpu/model', 'smkd-webgpu/train'.
import { parseArgs } from 'node:util';
import { AdamW, backward, crossEntropy, fromArray, inference, init, Rng, rt, tidy, type Tensor } from '../engine/index.js';
import { saveModel, VisionTransformer, vitConfig } from '../model/index.js';
import { channelStats, evalBatches, findClassFolders, indicesByClass, openImageFolder, SyntheticGlyphs, type ImageDataset } from '../train/index.js';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    classes: { type: 'string', default: '10' },
    steps: { type: 'string', default: '300' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '3e-3' },
    patch: { type: 'string', default: '8' },
    save: { type: 'string' },
  },
});
const [CLASSES, STEPS, BATCH, LR, PATCH] = [Number(opt.classes), Number(opt.steps), Number(opt.batch), Number(opt.lr), Number(opt.patch)];
const SIZE = 32;

async function openData(root: string | undefined): Promise<ImageDataset> {
  if (!root) return new SyntheticGlyphs({ split: 'train', size: SIZE, classes: { train: CLASSES, val: 0, test: 0 }, imagesPerClass: 200 });
  const classes = (await findClassFolders(root)).map((c) => c.name).slice(0, CLASSES);
  // Omniglot is black strokes on white; inverted, the strokes are the signal.
  return openImageFolder(root, { resize: SIZE, invert: true, classes });
}

await init();
const ds = await openData(positionals[0]);
const normalize = await channelStats(ds);
// Every class: its first three quarters train, the rest is held out.
const split = indicesByClass(ds).map((idx) => [idx.slice(0, Math.ceil(idx.length * 0.75)), idx.slice(Math.ceil(idx.length * 0.75))]);
const [trainIdx, testIdx] = [split.flatMap(([train]) => train!), split.flatMap(([, test]) => test!)];
const images = new Float32Array(ds.size * 3 * SIZE * SIZE);
for await (const b of evalBatches(ds, { size: SIZE, normalize, resizeRatio: 1 })) images.set(b.images, b.indices[0]! * 3 * SIZE * SIZE);
const batchOf = (idx: number[]): { x: Tensor<'f32'>; labels: number[] } => {
  const n = 3 * SIZE * SIZE;
  const x = new Float32Array(idx.length * n);
  idx.forEach((i, k) => x.set(images.subarray(i * n, (i + 1) * n), k * n));
  return { x: fromArray(x, [idx.length, 3, SIZE, SIZE]), labels: idx.map((i) => ds.label(i)) };
};
console.log(`${ds.name}: ${ds.classes.length} classes, ${trainIdx.length} training and ${testIdx.length} held-out images`);

// timm's VisionTransformer(num_classes=C): a linear `head` on the [cls] token, timm's parameter names.
const model = new VisionTransformer(vitConfig('tiny', { imgSize: SIZE, patchSize: PATCH, numClasses: ds.classes.length })).build({ seed: 0 });
const optimizer = new AdamW(model.arena);
const rng = new Rng(0);
let order: number[] = [];
const t0 = performance.now();
for (let step = 1; step <= STEPS; step++) {
  if (order.length < BATCH) order = rng.shuffle([...trainIdx]);
  const { x, labels } = batchOf(order.splice(0, BATCH));
  model.arena.zeroGrad();
  const loss = tidy(() => crossEntropy(model.logits(x), labels));
  backward(loss);
  // Linear warm-up over the first tenth, then constant.
  optimizer.step({ lr: LR * Math.min(1, step / Math.max(1, STEPS / 10)), weightDecay: 0.05 });
  // One submission per step: forward, backward and update go to the GPU together.
  await rt().flush();
  if (step % 20 === 0 || step === STEPS) {
    const secs = (performance.now() - t0) / 1000;
    console.log(`step ${step}/${STEPS}  loss ${(await loss.item()).toFixed(3)}  ${((step * BATCH) / secs).toFixed(0)} images/s`);
  }
  x.dispose();
  loss.dispose();
}

model.eval();
let correct = 0;
for (let s = 0; s < testIdx.length; s += 64) {
  const { x, labels } = batchOf(testIdx.slice(s, s + 64));
  const logits = await inference(() => model.logits(x)); // read back, nothing left alive
  labels.forEach((l, k) => {
    const row = logits.subarray(k * ds.classes.length, (k + 1) * ds.classes.length);
    if (row.indexOf(Math.max(...row)) === l) correct++;
  });
  x.dispose();
}
console.log(`held-out accuracy ${((100 * correct) / testIdx.length).toFixed(1)}% on ${testIdx.length} images (chance ${(100 / ds.classes.length).toFixed(1)}%)`);
if (opt.save) {
  await saveModel(opt.save, model, { config: JSON.stringify(model.config), normalize: JSON.stringify(normalize), classes: JSON.stringify(ds.classes) });
  console.log(`saved ${opt.save} (timm names; see docs/interop.md to load it in PyTorch)`);
}
