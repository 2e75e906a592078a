// Resumable training checkpoints: student, teacher, centres, AdamW state and the iteration, in a
// directory written under a temporary name and renamed into place, with `latest.json` switched by
// an atomic rename. A crash or Ctrl-C at any moment leaves the previous checkpoint whole.
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { assign, fromArray, type AdamW } from '../engine/index.js';
import { readSafetensors, toFloat32, writeSafetensors, type NamedArray } from '../engine/io/safetensors.js';
import { loadModel, saveModel } from '../model/checkpoint.js';
import type { StudentTeacher } from '../model/smkd.js';
import type { Normalization } from './data/index.js';
import type { FeatureKind } from './features.js';

export interface TrainState {
  /** Iterations completed. */
  iteration: number;
  phase: 1 | 2;
  /** Few-shot validation accuracy of this checkpoint, when measured. */
  valAccuracy?: number;
}

export interface CheckpointParts {
  models: StudentTeacher;
  optimizer: AdamW;
  /** Recorded in the metadata of both network files. */
  preprocessing?: Preprocessing;
}

/**
 * How training prepared the model's input, in the metadata of every checkpoint file (key
 * `preprocessing`, JSON), so that `smkd eval` and `smkd embed` given the file alone prepare images the
 * same way: the side images were decoded to, whether they were inverted, the normalisation, the
 * evaluation transform's resize ratio and the feature kind.
 */
export interface Preprocessing {
  imageSize: number;
  invert: boolean;
  normalize: Normalization;
  resizeRatio: number;
  features: FeatureKind;
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(value, null, 2));
  await rename(tmp, file);
}

/** Write a checkpoint of `parts` at `state.iteration` into `dir/checkpoints/`, then point latest.json at it. */
export async function saveCheckpoint(runDir: string, parts: CheckpointParts, state: TrainState, keep = 2): Promise<string> {
  const root = path.join(runDir, 'checkpoints');
  await mkdir(root, { recursive: true });
  const name = `it-${String(state.iteration).padStart(7, '0')}`;
  const tmp = path.join(root, `${name}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  const { models, optimizer } = parts;
  // The ViT's hyper-parameters that the weights' shapes do not tell (heads, LayerNorm eps), so a file alone describes its model.
  const c = models.student.backbone.config;
  const vit = JSON.stringify({ img_size: c.imgSize, patch_size: c.patchSize, embed_dim: c.embedDim, depth: c.depth, num_heads: c.numHeads, mlp_ratio: c.mlpRatio, ln_eps: c.lnEps });
  const meta: Record<string, string> = { phase: String(state.phase), iteration: String(state.iteration), vit };
  if (parts.preprocessing) meta.preprocessing = JSON.stringify(parts.preprocessing);
  await saveModel(path.join(tmp, 'student.safetensors'), models.student, meta);
  await saveModel(path.join(tmp, 'teacher.safetensors'), models.teacher, meta);
  const K = models.center.size;
  await writeSafetensors(path.join(tmp, 'loss_state.safetensors'), [
    ['center', { data: await models.center.toArray(), shape: [1, K] }],
    ['center2', { data: await models.center2.toArray(), shape: [1, 1, K] }],
  ]);
  const opt = await optimizer.stateDict();
  const tensors: [string, NamedArray][] = [];
  for (const [k, v] of opt.exp_avg) tensors.push([`exp_avg.${k}`, { data: v, shape: [v.length] }]);
  for (const [k, v] of opt.exp_avg_sq) tensors.push([`exp_avg_sq.${k}`, { data: v, shape: [v.length] }]);
  for (const [k, v] of opt.step) tensors.push([`step.${k}`, { data: BigInt64Array.of(BigInt(v)), shape: [] }]);
  await writeSafetensors(path.join(tmp, 'optimizer.safetensors'), tensors);
  await writeJsonAtomic(path.join(tmp, 'state.json'), state);
  const final = path.join(root, name);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await writeJsonAtomic(path.join(runDir, 'latest.json'), { checkpoint: `checkpoints/${name}`, ...state });
  await prune(root, keep, name);
  return final;
}

/** Keep the newest `keep` checkpoints (and the one named `best` in best.json); remove stale temporaries. */
async function prune(root: string, keep: number, current: string): Promise<void> {
  const runDir = path.dirname(root);
  let best: string | undefined;
  try {
    best = path.basename((JSON.parse(await readFile(path.join(runDir, 'best.json'), 'utf8')) as { checkpoint: string }).checkpoint);
  } catch {
    best = undefined;
  }
  const entries = (await readdir(root)).sort();
  const done = entries.filter((e) => /^it-\d+$/.test(e));
  const stale = entries.filter((e) => e.includes('.tmp-') && !e.endsWith(`.tmp-${process.pid}`));
  const old = done.slice(0, Math.max(0, done.length - keep)).filter((e) => e !== best && e !== current);
  for (const e of [...old, ...stale]) await rm(path.join(root, e), { recursive: true, force: true });
}

/** Mark a checkpoint as the best so far (kept by pruning). */
export async function markBest(runDir: string, checkpointDir: string, state: TrainState): Promise<void> {
  await writeJsonAtomic(path.join(runDir, 'best.json'), { checkpoint: path.relative(runDir, checkpointDir), ...state });
}

/** The checkpoint directory a run directory's latest.json points at, or undefined if there is none. */
export async function latestCheckpoint(runDir: string): Promise<string | undefined> {
  try {
    const l = JSON.parse(await readFile(path.join(runDir, 'latest.json'), 'utf8')) as { checkpoint: string };
    return path.join(runDir, l.checkpoint);
  } catch {
    return undefined;
  }
}

export interface LoadCheckpointOptions {
  /** Also restore the AdamW state (default true). */
  optimizer?: boolean;
  /** Parameters that may be missing from the checkpoint or from the model (they keep their initialisation, or are skipped); every other mismatch is an error. */
  optional?: (name: string) => boolean;
}

/** Restore models, centres and (optionally) the optimiser from a checkpoint directory; returns the names `optional` let through. */
export async function loadCheckpoint(dir: string, parts: CheckpointParts, opts: LoadCheckpointOptions = {}): Promise<TrainState & { skipped: string[] }> {
  const { models, optimizer } = parts;
  const optional = opts.optional;
  const skipped = new Set<string>();
  for (const [file, net] of [['student.safetensors', models.student], ['teacher.safetensors', models.teacher]] as const) {
    const { missing, unexpected } = await loadModel(path.join(dir, file), net, !optional);
    const badMissing = missing.filter((k) => !optional?.(k));
    const badUnexpected = unexpected.filter((k) => !optional?.(k));
    const list = (what: string, keys: string[]): string[] => (keys.length ? [`${what} (${keys.length}): ${keys.slice(0, 4).join(', ')}${keys.length > 4 ? ', ...' : ''}`] : []);
    const bad = [...list('missing keys', badMissing), ...list('unexpected keys', badUnexpected)];
    if (bad.length) throw new Error(`${path.join(dir, file)}: loadStateDict: ${bad.join('; ')}`);
    for (const k of [...missing, ...unexpected]) skipped.add(k);
  }
  const ls = await readSafetensors(path.join(dir, 'loss_state.safetensors'));
  for (const [key, t] of [['center', models.center], ['center2', models.center2]] as const) {
    const st = ls.tensors.get(key);
    if (!st || st.shape.reduce((a, d) => a * d, 1) !== t.size) throw new Error(`${dir}: loss_state.safetensors has no ${key} of ${t.size} values`);
    const src = fromArray(toFloat32(st), t.shape);
    assign(t, src);
    src.dispose();
  }
  if (opts.optimizer ?? true) {
    const o = await readSafetensors(path.join(dir, 'optimizer.safetensors'));
    const pick = (prefix: string): Map<string, Float32Array> =>
      new Map([...o.tensors].filter(([k]) => k.startsWith(prefix) && !skipped.has(k.slice(prefix.length))).map(([k, v]) => [k.slice(prefix.length), toFloat32(v)]));
    const step = new Map([...pick('step.')].map(([k, v]) => [k, v[0]]));
    optimizer.loadStateDict({ step, exp_avg: pick('exp_avg.'), exp_avg_sq: pick('exp_avg_sq.') });
  }
  return { ...(JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as TrainState), skipped: [...skipped] };
}
