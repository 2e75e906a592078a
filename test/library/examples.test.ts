// The examples run, briefly: the custom op against its float64 check, the ViT classifier for a few
// steps on the synthetic glyphs and, where the shared data is present, on Omniglot (its saved weights
// carry timm's names), and the masked autoencoder until it beats a mean fill of the hidden patches.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readSafetensors } from '../../engine/index.js';
import { skipUnless } from '../helpers/skip.js';
import { REPO, runOk, tsxArgs } from './process.js';
import { timmVitShapes } from './timm.js';

const OMNIGLOT = process.env.OMNIGLOT_DIR ?? path.resolve(REPO, '../shared/data/omniglot/background');

const test = suite('examples');
let dir = '';

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'smkd-examples-'));
});

test.after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('custom-op: softplus with its own kernels matches float64, forward and backward', async () => {
  const r = await runOk(process.execPath, tsxArgs('examples/custom-op.ts'));
  const m = /forward error (\S+), gradient error (\S+)/.exec(r.stdout);
  assert.ok(m, `unexpected output: ${r.stdout}`);
  assert.ok(Number(m[1]) < 1e-5 && Number(m[2]) < 1e-5, r.stdout);
});

/** The classifier's report: losses of the progress lines and the held-out accuracy. */
function report(stdout: string): { losses: number[]; accuracy: number } {
  const losses = [...stdout.matchAll(/loss (\S+)/g)].map((m) => Number(m[1]));
  const accuracy = Number(/held-out accuracy (\S+)%/.exec(stdout)?.[1]);
  return { losses, accuracy };
}

test('vit-classifier: a short run on the synthetic glyphs trains, reports accuracy and saves timm-named weights', async () => {
  const file = path.join(dir, 'vit.safetensors');
  const r = await runOk(process.execPath, tsxArgs('examples/vit-classifier.ts', '--steps', '3', '--classes', '4', '--batch', '8', '--save', file));
  const { losses, accuracy } = report(r.stdout);
  assert.ok(losses.length >= 1 && losses.every(Number.isFinite), `no finite loss in: ${r.stdout}`);
  assert.ok(accuracy >= 0 && accuracy <= 100, `no accuracy in: ${r.stdout}`);
  const saved = await readSafetensors(file);
  const config = JSON.parse(saved.metadata.config) as { depth: number; embedDim: number; patchSize: number; imgSize: number };
  const expected = timmVitShapes({ ...config, classes: 4 });
  assert.equal([...saved.tensors.keys()].sort(), [...expected.keys()].sort());
  for (const [k, t] of saved.tensors) assert.equal(t.shape, expected.get(k), k);
  assert.is((JSON.parse(saved.metadata.classes) as string[]).length, 4);
});

test("masked-autoencoder: a short SimMIM run on generated images reconstructs hidden patches better than the visible pixels' mean", async () => {
  const r = await runOk(process.execPath, tsxArgs('examples/masked-autoencoder.ts', '--steps', '60', '--batch', '16'));
  assert.match(r.stdout, /^SimMIM +\d/m, 'the parameter summary');
  const m = /hidden patches of 64 new images: L1 (\S+) \(the visible pixels' mean: (\S+)\)/.exec(r.stdout);
  assert.ok(m, r.stdout);
  const [model, baseline] = [Number(m[1]), Number(m[2])];
  assert.ok(Number.isFinite(model) && model < 0.95 * baseline, r.stdout);
});

skipUnless(
  test,
  existsSync(OMNIGLOT),
  `no Omniglot at ${OMNIGLOT}; set OMNIGLOT_DIR`,
)('vit-classifier: a short run on Omniglot characters (when ../shared/data is present)', async () => {
  const r = await runOk(process.execPath, tsxArgs('examples/vit-classifier.ts', OMNIGLOT, '--steps', '2', '--classes', '3', '--batch', '8'));
  assert.match(r.stdout, /background: 3 classes, 45 training and 15 held-out images/);
  const { losses, accuracy } = report(r.stdout);
  assert.ok(losses.length >= 1 && losses.every(Number.isFinite) && accuracy >= 0, r.stdout);
});

test.run();
