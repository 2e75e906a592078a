// A backbone from a checkpoint alone: a run directory (its latest checkpoint), a checkpoint directory,
// or a safetensors file (ours, iBOT/DINO/SMKD or timm names). The ViT configuration comes from the
// weights' shapes; the number of heads, which no shape holds, from the run's config.json, the file's
// `vit` metadata, or the timm/preset convention.
import { stat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { readSafetensors } from '../engine/index.js';
import { VisionTransformer } from '../model/vit.js';
import { backboneTensors, inferVitConfig, integerWeights, parsePreprocessing, trainedOn, type InferredConfig, type Network } from './backbone.js';
import { findCheckpoint, type Preprocessing } from './checkpoint.js';
import { validateConfig } from './config.js';
import { configChanges } from './run-dir.js';

export { backboneTensors, inferVitConfig, type InferredConfig, type Network } from './backbone.js';

export interface CheckpointSource {
  /** The safetensors file holding the weights. */
  file: string;
  /** config.json of the run the checkpoint belongs to, when there is one. */
  runConfig?: string;
}

const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

/** The run directory of a checkpoint directory `<run>/checkpoints/<name>`, if it is one. */
async function runConfigOf(checkpointDir: string): Promise<string | undefined> {
  const parent = path.dirname(checkpointDir);
  if (path.basename(parent) !== 'checkpoints') return undefined;
  const cfg = path.join(path.dirname(parent), 'config.json');
  return (await exists(cfg)) ? cfg : undefined;
}

/**
 * Where the weights of `network` are for a run directory (its newest intact checkpoint: a damaged
 * latest one is passed over with a warning through `onWarning`), a checkpoint directory or a
 * safetensors file.
 */
export async function resolveCheckpoint(target: string, network: Network = 'teacher', onWarning: (m: string) => void = (m) => console.warn(m)): Promise<CheckpointSource> {
  const s = await stat(target).catch(() => null);
  if (!s) throw new Error(`checkpoint ${target}: no such file or folder`);
  if (s.isFile()) return { file: target, runConfig: await runConfigOf(path.dirname(target)) };
  const found = await findCheckpoint(target, [`${network}.safetensors`]);
  if (found) {
    if (found.warning) onWarning(`warning: ${found.warning}`);
    const cfg = path.join(target, 'config.json');
    return { file: path.join(found.dir, `${network}.safetensors`), runConfig: (await exists(cfg)) ? cfg : undefined };
  }
  const file = path.join(target, `${network}.safetensors`);
  if (await exists(file)) return { file, runConfig: await runConfigOf(target) };
  throw new Error(`checkpoint ${target}: not a run directory (no latest.json), a checkpoint directory (no ${network}.safetensors) or a safetensors file`);
}

/** The settings of a run's config.json that decide how its checkpoints are evaluated. */
const EVAL_KEYS = ['data.', 'model.', 'crops.globalSize', 'eval.resizeRatio', 'eval.features'];

/**
 * A checkpoint is evaluated with its run's config.json: refused when that file was edited by hand, in a
 * setting that changes the evaluation, after the checkpoint was written (its state.json records the
 * config it was made with), since e.g. another data.normalize.std gives chance-level features silently.
 */
async function checkRunConfig(src: CheckpointSource): Promise<void> {
  if (!src.runConfig) return;
  const stateFile = path.join(path.dirname(src.file), 'state.json');
  const state = (await exists(stateFile)) ? (parseJson(await readFile(stateFile, 'utf8'), stateFile) as { config?: Record<string, unknown> }) : {};
  if (!state.config) return;
  const current = validateConfig(parseJson(await readFile(src.runConfig, 'utf8'), src.runConfig), src.runConfig);
  const recorded = validateConfig({ ...state.config, out: current.out }, `the config recorded in ${stateFile}`);
  const edits = configChanges(recorded, current).filter((c) => EVAL_KEYS.some((k) => c.key.startsWith(k)));
  if (edits.length === 0) return;
  const shown = edits.slice(0, 8).map((c) => `  ${c.key}: ${JSON.stringify(c.from) ?? '(unset)'} at the checkpoint, ${JSON.stringify(c.to) ?? '(unset)'} in config.json`);
  throw new Error(
    `${src.runConfig} was changed after ${path.dirname(src.file)} was written, in ${edits.length} setting(s) that decide how it is evaluated:\n${shown.join('\n')}\nPut it back as it was (the settings the checkpoint was made with are in ${stateFile})`,
  );
}

/** JSON text of `file`, or an error naming the file (a run's config.json edited by hand). */
function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}); fix it, or give the checkpoint's .safetensors file itself`);
  }
}

/** For a damaged file of a run's checkpoint: where the run's newest intact checkpoint is, if it has one. */
async function intactHint(file: string, network: Network): Promise<string> {
  const checkpoints = path.dirname(path.dirname(file));
  if (path.basename(checkpoints) !== 'checkpoints') return '';
  const intact = await findCheckpoint(path.dirname(checkpoints), [`${network}.safetensors`]).catch(() => undefined);
  return intact && intact.dir !== path.dirname(file) ? ` (the newest intact checkpoint of its run is ${intact.dir})` : '';
}

export interface LoadedBackbone extends CheckpointSource, InferredConfig {
  backbone: VisionTransformer;
  /** File tensors the backbone does not use (a mask token, a classifier head, ...). */
  ignored: string[];
  /** How training prepared the images, from the file's `preprocessing` metadata (our checkpoints). */
  preprocessing?: Preprocessing;
  /** The alphabets or class folders the model was trained on, from a shipped model's `made_by` metadata (scripts/ship-model.ts). */
  trainedOn?: string[];
}

/**
 * A warning when a model was trained on some of the classes it is evaluated on (their top-level
 * folder, an Omniglot alphabet, is in its training split): the accuracy is then not held-out.
 */
export function seenClassesWarning(loaded: Pick<LoadedBackbone, 'trainedOn' | 'file'>, classes: readonly string[], where: string): string | undefined {
  if (!loaded.trainedOn) return undefined;
  const trained = new Set(loaded.trainedOn);
  const seen = [...new Set(classes.map((c) => c.split('/')[0]))].filter((a) => trained.has(a));
  if (seen.length === 0) return undefined;
  return `${where}: warning: ${loaded.file} was trained on ${seen.join(', ')}, so this is not a held-out score (its held-out twin's scores are in its model card, models/README.md)`;
}

export interface LoadBackboneOptions {
  network?: Network;
  /** Where the warning about a damaged checkpoint passed over goes (default console.warn). */
  onWarning?: (message: string) => void;
  /** Attention heads; default the run's config, the file's metadata, or the convention. */
  numHeads?: number;
}

/** An inference backbone (no mask token, no drop path, no gradients) with the weights of `target`. */
export async function loadBackbone(target: string, opts: LoadBackboneOptions = {}): Promise<LoadedBackbone> {
  const src = await resolveCheckpoint(target, opts.network, opts.onWarning);
  const file = await readSafetensors(src.file).catch(async (e: Error) => {
    throw new Error(`${e.message}${await intactHint(src.file, opts.network ?? 'teacher')}`);
  });
  if (src.runConfig) await checkRunConfig(src);
  const runHeads = src.runConfig ? (parseJson(await readFile(src.runConfig, 'utf8'), src.runConfig) as { model?: { numHeads?: number } }).model?.numHeads : undefined;
  const numHeads = opts.numHeads ?? runHeads;
  const tensors = backboneTensors(file, opts.network, src.file);
  let inferred: InferredConfig;
  try {
    inferred = inferVitConfig(tensors, file.metadata, numHeads);
  } catch (e) {
    throw new Error(`${src.file}: ${(e as Error).message}`);
  }
  if (opts.numHeads === undefined && runHeads !== undefined) inferred.headsFrom = 'run config';
  const backbone = new VisionTransformer(inferred.config).build({ requiresGrad: false, label: 'backbone' });
  try {
    const { missing, unexpected } = backbone.loadStateDict(tensors, false);
    if (missing.length > 0) throw new Error(`not a complete ViT backbone: missing ${missing.join(', ')}`);
    const skip = new Set(unexpected);
    integerWeights(file, opts.network ?? 'teacher', new Set([...tensors.keys()].filter((k) => !skip.has(k))), 'weights');
    const preprocessing = file.metadata.preprocessing ? parsePreprocessing(file.metadata.preprocessing) : undefined;
    return { ...src, ...inferred, backbone: backbone.eval(), ignored: unexpected, preprocessing, trainedOn: trainedOn(file.metadata) };
  } catch (e) {
    backbone.dispose();
    throw new Error(`${src.file}: ${(e as Error).message}`);
  }
}
