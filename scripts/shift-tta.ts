// Test-time shift averaging measured (docs/omniglot-recipe.md, part D): a trained run's teacher (or another
// model file, scored on that run's data splits) on one split, with each set of shifts, `tokens` and
// [cls] features, 5-way 1-shot, 5-way 5-shot and 20-way 1-shot, 600 episodes, the run's seed.
//
//   npx tsx scripts/shift-tta.ts <run> [--split val|test] [--model file.safetensors] [--sets none,r3s1,...]
import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { init } from '../engine/index.js';
import { loadBackbone } from '../train/backbone-file.js';
import type { TrainConfig } from '../train/config.js';
import { capPerClass, componentsFor, extractFeatures, selectFeatures, shiftGrid, type FeatureKind } from '../train/features.js';
import { evaluateFewShot } from '../train/fewshot.js';
import { openSplits } from '../train/sources.js';

/** Shifts of up to ±radius in x and y, `step` apart. */
function grid(radius: number, step: number): [number, number][] {
  const out: [number, number][] = [];
  for (let y = -radius; y <= radius; y += step) for (let x = -radius; x <= radius; x += step) out.push([x, y]);
  return out;
}
const cross = (k: number): [number, number][] => [
  [0, 0],
  [k, 0],
  [-k, 0],
  [0, k],
  [0, -k],
];
const SETS: Record<string, [number, number][]> = {
  none: [],
  cross1: cross(1),
  cross2: cross(2),
  r1s1: grid(1, 1),
  r2s2: grid(2, 2),
  r3s3: grid(3, 3),
  r2s1: grid(2, 1),
  r4s2: grid(4, 2),
  r3s1: shiftGrid(3),
};

const cmd = new Command('shift-tta')
  .argument('<run>', 'a run directory (its config names the data and its splits)')
  .option('--split <name>', 'val | test', 'val')
  .option('--model <file>', "a model to score instead of the run's teacher")
  .option('--sets <list>', `shift sets: ${Object.keys(SETS).join(', ')}`, (v) => v.split(','), Object.keys(SETS))
  .parse();
const opts = cmd.opts<{ split: 'val' | 'test'; model?: string; sets: string[] }>();
const run = cmd.args[0];
const bad = opts.sets.filter((s) => !(s in SETS));
if (bad.length) throw new Error(`--sets: no set ${bad.join(', ')}`);

await init();
const cfg = JSON.parse(await readFile(`${run}/config.json`, 'utf8')) as TrainConfig;
const splits = await openSplits(cfg.data, cfg.seed);
const loaded = await loadBackbone(opts.model ?? run);
// A shipped model is scored with the statistics it was trained with.
const normalize = loaded.preprocessing?.normalize ?? splits.normalize;
const ds = splits[opts.split];
const kinds: FeatureKind[] = ['tokens', 'cls'];
console.log(`${loaded.file} on ${ds.name}`);
for (const name of opts.sets) {
  const t0 = performance.now();
  const feats = await extractFeatures(loaded.backbone, ds, {
    size: cfg.crops.globalSize,
    normalize,
    resizeRatio: cfg.eval.resizeRatio,
    indices: capPerClass(ds, cfg.eval.maxPerClass),
    components: componentsFor(kinds),
    shifts: SETS[name],
  });
  const cells: string[] = [];
  for (const kind of kinds) {
    const f = selectFeatures(feats, kind);
    for (const [ways, shots] of [
      [5, 1],
      [5, 5],
      [20, 1],
    ]) {
      const res = evaluateFewShot(f, { ways, shots, queries: cfg.eval.queries, episodes: 600, seed: cfg.seed, classifier: 'prototype' });
      cells.push(`${kind} ${ways}w${shots}s ${res.mean.toFixed(2)}±${res.ci95.toFixed(2)}`);
    }
  }
  console.log(`${name.padEnd(7)} (${Math.max(1, SETS[name].length)} passes) ${cells.join(' | ')}  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
loaded.backbone.dispose();
process.exit(0);
