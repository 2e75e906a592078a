// The parameter list of timm's vit_small_patch16_224 backbone (21.7M parameters), for the
// arena-wide optimiser benchmarks: realistic sizes, and 150 tensors for the per-parameter loops.
import type { Variable as TfVariable } from '@tensorflow/tfjs-core';
import { assign, isDecayed, ParameterArena, randn, type ParameterSpec, type Shape, type Tensor } from '../../engine/index.js';
import type { Tf, TfTensor } from '../tfjs/backends.js';

/** [name, shape] of ViT-S/16 at 224 px (embed 384, 12 blocks, MLP 1536), in timm's order. */
export function vitSmallShapes(depth = 12, dim = 384, patch = 16, tokens = 197): [string, Shape][] {
  const list: [string, Shape][] = [
    ['cls_token', [1, 1, dim]],
    ['pos_embed', [1, tokens, dim]],
    ['patch_embed.proj.weight', [dim, 3, patch, patch]],
    ['patch_embed.proj.bias', [dim]],
  ];
  for (let i = 0; i < depth; i++) {
    const b = `blocks.${i}`;
    list.push(
      [`${b}.norm1.weight`, [dim]],
      [`${b}.norm1.bias`, [dim]],
      [`${b}.attn.qkv.weight`, [3 * dim, dim]],
      [`${b}.attn.qkv.bias`, [3 * dim]],
      [`${b}.attn.proj.weight`, [dim, dim]],
      [`${b}.attn.proj.bias`, [dim]],
      [`${b}.norm2.weight`, [dim]],
      [`${b}.norm2.bias`, [dim]],
      [`${b}.mlp.fc1.weight`, [4 * dim, dim]],
      [`${b}.mlp.fc1.bias`, [4 * dim]],
      [`${b}.mlp.fc2.weight`, [dim, 4 * dim]],
      [`${b}.mlp.fc2.bias`, [dim]],
    );
  }
  list.push(['norm.weight', [dim]], ['norm.bias', [dim]]);
  return list;
}

/** A parameter list the arena suites run over. */
export interface BenchArena {
  label: string;
  shapes: [string, Shape][];
  quick: boolean;
}

/** vit_small for the report, the ViT-Tiny-like step's model for --quick; two thin awkward blocks for the smoke test. */
export function benchArenas(sizes: 'full' | 'reduced'): BenchArena[] {
  if (sizes === 'reduced') return [{ label: 'reduced ViT', shapes: vitSmallShapes(2, 37, 5, 11), quick: true }];
  return [
    { label: 'vit_small', shapes: vitSmallShapes(), quick: false },
    { label: 'ViT-Tiny-like (dim 192, depth 4, 32 px)', shapes: vitSmallShapes(4, 192, 4, 65), quick: true },
  ];
}

export function specsOf(shapes: [string, Shape][]): ParameterSpec[] {
  return shapes.map(([name, shape]) => ({ name, shape, decay: isDecayed(name, shape) }));
}

/** Fill a whole arena buffer (padding too) with seeded normal values: one dispatch and one copy. */
export function randomize(flat: Tensor<'f32'>, seed: number, mean = 0, std = 1): void {
  const r = randn(flat.shape, seed, mean, std);
  assign(flat, r);
  r.dispose();
}

/** An arena of these parameters with seeded random values. */
export function randomArena(shapes: [string, Shape][], seed: number, opts: { like?: ParameterArena; label: string; requiresGrad?: boolean }): ParameterArena {
  const arena = new ParameterArena(specsOf(shapes), opts);
  randomize(arena.data.flat, seed, 0, 0.02);
  return arena;
}

export function paramCount(shapes: [string, Shape][]): number {
  return shapes.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
}

/** Every parameter of the arena, in order, as one array (padding left out). */
export async function flatValues(arena: ParameterArena, which: 'param' | 'grad' | 'exp_avg' | 'exp_avg_sq' = 'param'): Promise<Float32Array> {
  const buf = which === 'param' ? arena.data : which === 'grad' ? arena.grads : arena.state(which);
  const byName = await buf.read();
  const out = new Float32Array(arena.entries.reduce((n, e) => n + e.size, 0));
  let at = 0;
  for (const e of arena.entries) {
    out.set(byName.get(e.name)!, at);
    at += e.size;
  }
  return out;
}

/** The case name shared by the arena suites (EMA, AdamW). */
export function arenaCaseName(a: BenchArena): string {
  const P = paramCount(a.shapes);
  return `${a.label} arena, ${a.shapes.length} tensors, ${(P / 1e6).toFixed(P < 1e6 ? 3 : 1)}M params`;
}

/** One tfjs variable per parameter of the arena, holding the arena's current values of `which`. */
export async function tfVariables(tf: Tf, arena: ParameterArena, which: 'param' | 'grad' | 'exp_avg' | 'exp_avg_sq' = 'param'): Promise<TfVariable[]> {
  const flat = await flatValues(arena, which);
  let at = 0;
  return arena.entries.map((e) => {
    const v = tf.variable(tf.tensor(flat.subarray(at, at + e.size), [...e.shape]), false);
    at += e.size;
    return v;
  });
}

/** The values of tfjs tensors, concatenated (the order of flatValues). */
export async function flatTf(ts: readonly TfTensor[]): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for (const t of ts) parts.push((await t.data()) as Float32Array);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
