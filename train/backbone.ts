// A ViT backbone from safetensors contents alone, on every platform (the page of web/ and the Node commands
// alike): the backbone's tensors under bare timm names, its configuration from their shapes and the
// file's metadata, and the metadata our checkpoints carry (preprocessing, training split). Finding and
// reading the file is backbone-file.ts's part, in Node.
import { isFloat, toFloat32, toWeights, type SafeFile, type HostTensor } from '../engine/api.js';
import { normalizeKey } from '../model/checkpoint.js';
import { vitConfig, type VitConfig } from '../model/configs.js';
import type { Preprocessing } from './checkpoint.js';
import { FEATURE_KINDS } from './feature-options.js';

export type Network = 'teacher' | 'student';

/**
 * The backbone tensors of a file under bare timm names: `module.` and new weight-norm names
 * normalised, the `<network>.` half of a student/teacher file, `backbone.` stripped (a head is dropped).
 */
export function backboneTensors(file: SafeFile, network: Network = 'teacher', what = 'weights'): Map<string, HostTensor> {
  return new Map(
    backboneKeys(file, network).map(([o, k]) => {
      const t = file.tensors.get(o)!;
      // Integer tensors (a mask, a counter) are not weights: converted as they are; loadBackbone refuses one that would fill a weight.
      return [k, { data: isFloat(t.dtype) ? toWeights(o, t, what) : toFloat32(t), shape: t.shape }];
    }),
  );
}

/** [file key, backbone name] of the tensors backboneTensors takes. */
function backboneKeys(file: SafeFile, network: Network): (readonly [string, string])[] {
  let keys = [...file.tensors.keys()].map((k) => [k, normalizeKey(k)] as const);
  // A whole-training file (the reference code's {student, teacher} dicts flattened): the network's half, its own `module.` dropped.
  if (keys.some(([, k]) => k.startsWith(`${network}.`)))
    keys = keys.filter(([, k]) => k.startsWith(`${network}.`)).map(([o, k]) => [o, normalizeKey(k.slice(network.length + 1))] as const);
  if (keys.some(([, k]) => k.startsWith('backbone.'))) keys = keys.filter(([, k]) => k.startsWith('backbone.')).map(([o, k]) => [o, k.slice('backbone.'.length)] as const);
  return keys;
}

/** An error for a tensor stored as integers that fills one of the backbone's weights (`used`: the names it loaded). */
export function integerWeights(file: SafeFile, network: Network, used: ReadonlySet<string>, what: string): void {
  for (const [o, k] of backboneKeys(file, network)) if (used.has(k)) toWeights(o, file.tensors.get(o)!, what);
}

export interface InferredConfig {
  config: VitConfig;
  /** Where the number of heads came from. */
  headsFrom: 'given' | 'run config' | 'metadata' | 'convention';
}

/**
 * The ViT configuration of bare backbone tensors: patch size and width from patch_embed, the trained
 * grid from pos_embed, depth from the block names, the MLP ratio from fc1. Heads: `numHeads`, else the
 * file's `vit` metadata (num_heads), else 64-wide heads from D = 192 up (timm, DINO) and 32-wide below
 * (the presets of docs/algorithm.md §10.2).
 */
export function inferVitConfig(tensors: ReadonlyMap<string, HostTensor>, metadata: Record<string, string> = {}, numHeads?: number): InferredConfig {
  const need = (k: string): readonly number[] => {
    const t = tensors.get(k);
    if (!t) throw new Error(`not a ViT backbone: no '${k}' among ${tensors.size} tensors (${[...tensors.keys()].slice(0, 5).join(', ')}${tensors.size > 5 ? ', ...' : ''})`);
    return t.shape;
  };
  const [D, channels, p, pw] = need('patch_embed.proj.weight');
  if (channels !== 3 || p !== pw) throw new Error(`not a ViT backbone of square RGB patches: patch_embed.proj.weight is [${need('patch_embed.proj.weight')}]`);
  const pos = need('pos_embed');
  const grid = Math.round(Math.sqrt(pos[1] - 1));
  if (pos.length !== 3 || grid * grid !== pos[1] - 1 || pos[2] !== D) throw new Error(`pos_embed [${pos}] is not [1, 1 + g², ${D}] (a [cls] row and a square grid)`);
  const depth = 1 + Math.max(-1, ...[...tensors.keys()].map((k) => Number(/^blocks\.(\d+)\./.exec(k)?.[1] ?? -1)));
  if (depth === 0) throw new Error('not a ViT backbone: no blocks.N.* tensors');
  const hidden = need('blocks.0.mlp.fc1.weight')[0];
  let meta: { num_heads?: number; ln_eps?: number } = {};
  try {
    meta = metadata.vit ? (JSON.parse(metadata.vit) as typeof meta) : {};
  } catch {
    meta = {};
  }
  const heads = numHeads ?? meta.num_heads ?? (D >= 192 && D % 64 === 0 ? D / 64 : D % 32 === 0 ? D / 32 : 1);
  const config = vitConfig('tiny', {
    imgSize: grid * p,
    patchSize: p,
    embedDim: D,
    depth,
    numHeads: heads,
    mlpRatio: hidden / D,
    lnEps: meta.ln_eps ?? 1e-6,
    dropPath: 0,
    maskToken: false,
  });
  return { config, headsFrom: numHeads !== undefined ? 'given' : meta.num_heads !== undefined ? 'metadata' : 'convention' };
}

/** A checkpoint's `preprocessing` metadata, checked: a damaged one is an error saying so rather than a TypeError later. */
export function parsePreprocessing(text: string): Preprocessing {
  let p: Partial<Preprocessing> | undefined;
  try {
    p = JSON.parse(text) as Partial<Preprocessing>;
  } catch {
    p = undefined;
  }
  const triple = (v: unknown, positive: boolean): boolean =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
  const ok =
    typeof p === 'object' &&
    p !== null &&
    Number.isInteger(p.imageSize) &&
    (p.imageSize ?? 0) > 0 &&
    typeof p.invert === 'boolean' &&
    triple(p.normalize?.mean, false) &&
    triple(p.normalize?.std, true) &&
    typeof p.resizeRatio === 'number' &&
    p.resizeRatio > 0 &&
    typeof p.features === 'string' &&
    (FEATURE_KINDS as readonly string[]).includes(p.features);
  if (!ok)
    throw new Error(
      `its "preprocessing" metadata is damaged (${text.length > 200 ? `${text.slice(0, 200)}...` : text}): expected imageSize, invert, normalize {mean, std}, resizeRatio and features`,
    );
  return p as Preprocessing;
}

/** The training split a shipped model's `made_by` metadata records, when it is a list (of alphabets). */
export function trainedOn(metadata: Record<string, string>): string[] | undefined {
  try {
    const split = (JSON.parse(metadata.made_by ?? '{}') as { data?: { trainSplit?: unknown } }).data?.trainSplit;
    return Array.isArray(split) && split.every((x) => typeof x === 'string') ? (split as string[]) : undefined;
  } catch {
    return undefined;
  }
}
