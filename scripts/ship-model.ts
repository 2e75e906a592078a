// Ships a trained run's teacher backbone as the package's model (models/omniglot-vit.safetensors, the
// default of `smkd classify`, `eval`, `embed` and `show`): the backbone's tensors only (no DINO head, no
// classifier, no mask token), float32, with the metadata a bare file needs (the ViT, the preprocessing)
// and how it was made (the commands, the run's data, crops and wall time).
//
//   npx tsx scripts/ship-model.ts <run-dir> --made-by "<command>" [--made-by "<command>" ...] [-o models/omniglot-vit.safetensors]
import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readSafetensors, toFloat32, writeSafetensors, type NamedArray } from '../engine/index.js';
import { findCheckpoint } from '../train/checkpoint.js';
import { DEFAULT_MODEL_FILE } from '../train/default-model.js';

const cmd = new Command('ship-model')
  .argument('<run>', 'the run directory whose newest checkpoint ships')
  .option('-o, --output <file>', 'the file to write', path.join('models', DEFAULT_MODEL_FILE))
  .option('--made-by <command>', 'a command that made the run (repeat for several, in order)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .parse();
const o = cmd.opts<{ output: string; madeBy: string[] }>();
const run = cmd.args[0];

const found = await findCheckpoint(run, ['teacher.safetensors']);
if (!found) throw new Error(`${run}: no checkpoint`);
const file = await readSafetensors(path.join(found.dir, 'teacher.safetensors'));
const config = JSON.parse(await readFile(path.join(run, 'config.json'), 'utf8')) as {
  objective: string;
  data: unknown;
  model: unknown;
  crops: { global: number; local: number };
  batch: { size: number };
};
const metrics = (await readFile(path.join(run, 'metrics.jsonl'), 'utf8'))
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { iteration: number; seconds?: number })
  // Validation lines have no step time.
  .filter((m) => m.seconds !== undefined);
const tensors: [string, NamedArray][] = [];
for (const [name, t] of file.tensors) {
  if (!name.startsWith('backbone.') || name.startsWith('backbone.head.') || name === 'backbone.mask_token') continue;
  tensors.push([name.slice('backbone.'.length), { data: toFloat32(t), shape: [...t.shape] }]);
}
const stepSeconds = metrics.reduce((a, m) => a + (m.seconds ?? 0), 0);
// The CE baseline learns from the global crops only (train/trainer.ts cropLoader).
const crops = metrics.length * config.batch.size * (config.crops.global + (config.objective === 'ce' ? 0 : config.crops.local));
const madeBy = {
  commands: o.madeBy,
  checkpoint: path.relative(run, found.dir),
  iterations: metrics.length,
  crops,
  stepSeconds: Math.round(stepSeconds),
  objective: config.objective,
  data: config.data,
  model: config.model,
};
await writeSafetensors(o.output, tensors, { vit: file.metadata.vit, preprocessing: file.metadata.preprocessing, made_by: JSON.stringify(madeBy) });
console.log(`${o.output}: ${tensors.length} tensors from ${found.dir}, ${crops} crops in ${Math.round(stepSeconds)} s of steps`);
