// Resumable training checkpoints: student, teacher, centres, AdamW state and the iteration, in a
// directory written under a temporary name and renamed into place, with `latest.json` switched by
// an atomic rename. A crash or Ctrl-C at any moment leaves the previous checkpoint whole; a
// checkpoint damaged afterwards (a truncated file, a deleted directory) is passed over for the newest
// intact one, with a warning naming both.
import { fsErrorMessage } from './output-file.js';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { assign, fromArray, StateDictError, type AdamW, type Module, readSafetensors, toFloat32, writeSafetensors, saveOptimizer, loadOptimizerTensors } from '../engine/index.js';
import { fitStateDict, saveModel } from '../model/index.js';
import type { VitConfig } from '../model/configs.js';
import type { StudentTeacher } from '../model/smkd.js';
import type { Normalization } from './data/index.js';
import type { FeatureKind } from './features.js';

export interface TrainState {
  /** Iterations completed. */
  iteration: number;
  phase: 1 | 2;
  /** Few-shot validation accuracy of this checkpoint, when measured. */
  valAccuracy?: number;
  /**
   * The run's config.json as it was when the checkpoint was written (without `out`, so a run folder can
   * be moved), in state.json only: a resume compares it with config.json, so a hand edit is not taken
   * silently. Absent in checkpoints written before it was recorded.
   */
  config?: Record<string, unknown>;
}

/** A state without its config, for latest.json and best.json. */
function brief(state: TrainState): Omit<TrainState, 'config'> {
  const { config: _config, ...rest } = state;
  return rest;
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

/**
 * Write JSON under a temporary name, flushed to disk, then rename it into place and flush the folder: a
 * kill at any point leaves the old file or the new one, and so does a power cut (the rename is not
 * made durable before the data it names).
 */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(value, null, 2));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await syncDir(path.dirname(file));
}

/** Flush a folder's entries (renames into it) to disk. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** About how many bytes a checkpoint of these models takes: student and teacher, AdamW's two moments, the centres. */
async function checkpointBytes(parts: CheckpointParts): Promise<number> {
  const params = (m: Module): number => m.arena.entries.reduce((a, e) => a + e.size, 0);
  return 4 * (params(parts.models.student) * 3 + params(parts.models.teacher) + parts.models.center.size * 2) + 64 * 1024;
}

/** The files of one checkpoint into the folder `tmp` (renamed into place by saveCheckpoint). */
async function writeCheckpointFiles(tmp: string, parts: CheckpointParts, state: TrainState): Promise<void> {
  const { models, optimizer } = parts;
  // The ViT's hyper-parameters that the weights' shapes do not tell (heads, LayerNorm eps), so a file alone describes its model.
  const c = models.student.backbone.config;
  const vit = JSON.stringify({
    img_size: c.imgSize,
    patch_size: c.patchSize,
    embed_dim: c.embedDim,
    depth: c.depth,
    num_heads: c.numHeads,
    mlp_ratio: c.mlpRatio,
    ln_eps: c.lnEps,
  });
  const meta: Record<string, string> = { phase: String(state.phase), iteration: String(state.iteration), vit };
  if (parts.preprocessing) meta.preprocessing = JSON.stringify(parts.preprocessing);
  await saveModel(path.join(tmp, 'student.safetensors'), models.student, meta);
  await saveModel(path.join(tmp, 'teacher.safetensors'), models.teacher, meta);
  const K = models.center.size;
  await writeSafetensors(path.join(tmp, 'loss_state.safetensors'), [
    ['center', { data: await models.center.toArray(), shape: [1, K] }],
    ['center2', { data: await models.center2.toArray(), shape: [1, 1, K] }],
  ]);
  await saveOptimizer(path.join(tmp, 'optimizer.safetensors'), optimizer);
  await writeJsonAtomic(path.join(tmp, 'state.json'), state);
}

/**
 * Write a checkpoint of `parts` at `state.iteration` into `dir/checkpoints/`, then point latest.json at
 * it, and prune: the newest `keep` stay (and the best one); a checkpoint off the schedule (`onSchedule`:
 * one written for a Ctrl-C or a best validation) goes once a newer one is written and it is not the best.
 */
export async function saveCheckpoint(
  runDir: string,
  parts: CheckpointParts,
  state: TrainState,
  keep = 3,
  onSchedule: (iteration: number) => boolean = () => true,
): Promise<string> {
  const root = path.join(runDir, 'checkpoints');
  await mkdir(root, { recursive: true });
  const name = `it-${String(state.iteration).padStart(7, '0')}`;
  const tmp = path.join(root, `${name}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  try {
    await writeCheckpointFiles(tmp, parts, state);
  } catch (e) {
    // A full disk must not stay full of half a checkpoint until the next start.
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    const need = (e as NodeJS.ErrnoException).code === 'ENOSPC' ? await checkpointBytes(parts) : 0;
    const size = need ? ` (a checkpoint of this run takes ${(need / 1e6).toFixed(1)} MB)` : '';
    throw new Error(
      `${fsErrorMessage(e, `writing checkpoint ${name} of ${runDir}`)}${size}; the checkpoint before it is whole (latest.json), and the same command resumes from it`,
    );
  }
  const final = path.join(root, name);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  // The checkpoint's folder entry reaches the disk before latest.json names it.
  await syncDir(root);
  await writeJsonAtomic(path.join(runDir, 'latest.json'), { checkpoint: `checkpoints/${name}`, ...brief(state) });
  await prune(root, keep, name, onSchedule);
  return final;
}

/** Keep the newest `keep` checkpoints (and the one named `best` in best.json), none off the schedule but the newest; remove stale temporaries. */
async function prune(root: string, keep: number, current: string, onSchedule: (iteration: number) => boolean): Promise<void> {
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
  const interim = done.filter((e) => e < current && !onSchedule(Number(e.slice(3))));
  const old = [...new Set([...done.slice(0, Math.max(0, done.length - keep)), ...interim])].filter((e) => e !== best && e !== current);
  for (const e of [...old, ...stale]) await rm(path.join(root, e), { recursive: true, force: true });
}

/** Mark a checkpoint as the best so far (kept by pruning); with `keep`, prune as saveCheckpoint does (the former best may go). */
export async function markBest(runDir: string, checkpointDir: string, state: TrainState, keep?: number, onSchedule: (iteration: number) => boolean = () => true): Promise<void> {
  await writeJsonAtomic(path.join(runDir, 'best.json'), { checkpoint: path.relative(runDir, checkpointDir), ...brief(state) });
  if (keep !== undefined) await prune(path.join(runDir, 'checkpoints'), keep, path.basename(checkpointDir), onSchedule);
}

/** The files of a resumable checkpoint. */
export const CHECKPOINT_FILES = ['state.json', 'student.safetensors', 'teacher.safetensors', 'loss_state.safetensors', 'optimizer.safetensors'] as const;

const isDirectory = (p: string): Promise<boolean> =>
  stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );

/**
 * Why the checkpoint directory `dir` cannot be read ("is missing", "student.safetensors: ..."), or
 * undefined when every one of `files` is whole: present, parsed, every tensor within the file.
 */
export async function checkpointProblem(dir: string, files: readonly string[] = CHECKPOINT_FILES): Promise<string | undefined> {
  if (!(await isDirectory(dir))) return 'is missing';
  for (const f of files) {
    const file = path.join(dir, f);
    if (!(await stat(file).catch(() => null))) return `is damaged: ${f} is missing`;
    try {
      if (f.endsWith('.json')) {
        const s = JSON.parse(await readFile(file, 'utf8')) as Partial<TrainState>;
        if (!Number.isInteger(s.iteration)) throw new Error('no iteration');
      } else await readSafetensors(file);
    } catch (e) {
      return `is damaged: ${f}: ${(e as Error).message.split(`${file}: `).join('')}`;
    }
  }
  return undefined;
}

export interface FoundCheckpoint {
  /** The checkpoint directory to read. */
  dir: string;
  /** Set when a newer checkpoint (the one latest.json names) is missing or damaged: what was passed over, and for which. */
  warning?: string;
}

/**
 * The checkpoint of a run directory: the one latest.json names when it is intact, else the newest
 * intact one under checkpoints/ (with a warning naming both); undefined when the run has none.
 * Throws when it has checkpoints and none is intact. `files`: what must be whole (eval reads one network).
 */
export async function findCheckpoint(runDir: string, files: readonly string[] = CHECKPOINT_FILES): Promise<FoundCheckpoint | undefined> {
  const notes: string[] = [];
  let named: string | undefined;
  const latestFile = path.join(runDir, 'latest.json');
  const latestText = await readFile(latestFile, 'utf8').catch(() => undefined);
  if (latestText !== undefined) {
    try {
      named = path.join(runDir, (JSON.parse(latestText) as { checkpoint: string }).checkpoint);
    } catch (e) {
      notes.push(`${latestFile} is unreadable (${(e as Error).message})`);
    }
  }
  const root = path.join(runDir, 'checkpoints');
  const others = (await readdir(root).catch(() => [] as string[]))
    .filter((e) => /^it-\d+$/.test(e))
    .sort()
    .reverse()
    .map((e) => path.join(root, e))
    .filter((d) => d !== named);
  const candidates = named ? [named, ...others] : others;
  if (candidates.length === 0) {
    if (notes.length) throw new Error(`${runDir}: ${notes[0]} and there is no checkpoint under ${root}`);
    return undefined;
  }
  for (const dir of candidates) {
    const problem = await checkpointProblem(dir, files);
    if (!problem) return { dir, ...(notes.length ? { warning: `${notes.join('; ')}; using ${dir}, the newest intact checkpoint` } : {}) };
    notes.push(`checkpoint ${dir}${dir === named ? ' (named by latest.json)' : ''} ${problem}`);
  }
  throw new Error(`${runDir} has no intact checkpoint: ${notes.join('; ')}. Move the run directory aside to start it over.`);
}

/** A short description of a ViT configuration, for mismatch messages. */
function describeVit(c: { embedDim?: number; depth?: number; numHeads?: number; patchSize?: number; imgSize?: number }): string {
  return `embedDim ${c.embedDim}, depth ${c.depth}, ${c.numHeads} heads, patch ${c.patchSize}, ${c.imgSize} px`;
}

/**
 * A state-dict mismatch in a few lines: per kind the count and the first keys, and, when the file's
 * metadata records its ViT, that model against the one the config builds.
 */
function describeMismatch(file: string, e: StateDictError, metadata: Record<string, string>, model?: VitConfig): string {
  const some = (what: string, items: string[], sep: string): string[] =>
    items.length ? [`  ${what} (${items.length}): ${items.slice(0, 3).join(sep)}${items.length > 3 ? `${sep}... (${items.length - 3} more)` : ''}`] : [];
  const lines = [
    `${file} does not fit the model:`,
    ...some('shape mismatches', e.misshaped, '; '),
    ...some('missing keys', e.missing, ', '),
    ...some('unexpected keys', e.unexpected, ', '),
  ];
  try {
    const v = JSON.parse(metadata.vit ?? '') as { img_size: number; patch_size: number; embed_dim: number; depth: number; num_heads: number };
    if (model)
      lines.push(
        `  the file holds a ViT of ${describeVit({ embedDim: v.embed_dim, depth: v.depth, numHeads: v.num_heads, patchSize: v.patch_size, imgSize: v.img_size })}; the config builds ${describeVit(model)}`,
      );
  } catch {
    // No metadata to compare with.
  }
  return lines.join('\n');
}

/** Load a safetensors file into `net` (non-strict: returns what is missing or unexpected); a shape mismatch is summarised. */
export async function loadNetwork(file: string, net: Module, strict: boolean, model?: VitConfig): Promise<{ missing: string[]; unexpected: string[] }> {
  const f = await readSafetensors(file);
  try {
    return net.loadStateDict(fitStateDict(f, net), strict);
  } catch (e) {
    if (e instanceof StateDictError) throw new Error(describeMismatch(file, e, f.metadata, model));
    throw new Error(`${file}: ${(e as Error).message}`);
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
  for (const [file, net] of [
    ['student.safetensors', models.student],
    ['teacher.safetensors', models.teacher],
  ] as const) {
    const { missing, unexpected } = await loadNetwork(path.join(dir, file), net, !optional, models.student.backbone.config);
    const badMissing = missing.filter((k) => !optional?.(k));
    const badUnexpected = unexpected.filter((k) => !optional?.(k));
    const list = (what: string, keys: string[]): string[] => (keys.length ? [`${what} (${keys.length}): ${keys.slice(0, 4).join(', ')}${keys.length > 4 ? ', ...' : ''}`] : []);
    const bad = [...list('missing keys', badMissing), ...list('unexpected keys', badUnexpected)];
    if (bad.length) throw new Error(`${path.join(dir, file)}: loadStateDict: ${bad.join('; ')}`);
    for (const k of [...missing, ...unexpected]) skipped.add(k);
  }
  const ls = await readSafetensors(path.join(dir, 'loss_state.safetensors'));
  for (const [key, t] of [
    ['center', models.center],
    ['center2', models.center2],
  ] as const) {
    const st = ls.tensors.get(key);
    if (!st || st.shape.reduce((a, d) => a * d, 1) !== t.size) throw new Error(`${dir}: loss_state.safetensors has no ${key} of ${t.size} values`);
    const src = fromArray(toFloat32(st), t.shape);
    assign(t, src);
    src.dispose();
  }
  if (opts.optimizer ?? true) {
    loadOptimizerTensors(optimizer, await readSafetensors(path.join(dir, 'optimizer.safetensors')), (name) => skipped.has(name));
  }
  return { ...(JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as TrainState), skipped: [...skipped] };
}
