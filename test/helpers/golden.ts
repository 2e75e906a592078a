// Access to the PyTorch golden files: GOLDEN_DIR, else the spec's ../shared/golden next to the checkout,
// else the repository's own set (test/golden-alt, made by scripts/reference/make_golden.py with another
// seed and configuration), so a fresh clone without ../shared still runs every PyTorch parity test.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'uvu';
import { readSafetensors, toFloat32, toTypedArray, type SafeFile } from '../../engine/index.js';
import { skipUnless, type Register } from './skip.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SHARED = path.resolve(REPO, '../shared/golden');
export const GOLDEN_DIR = process.env.GOLDEN_DIR ?? (existsSync(SHARED) ? SHARED : path.join(REPO, 'test/golden-alt'));

/** The named golden files that are not in GOLDEN_DIR. */
export function missingGolden(...names: string[]): string[] {
  return names.filter((n) => !existsSync(path.join(GOLDEN_DIR, n)));
}

/** Registers tests that read the named golden files: skipped, with the reason, where one is missing. */
export function needsGolden<T>(test: Test<T>, ...names: string[]): Register<T> {
  const missing = missingGolden(...names);
  return skipUnless(test, missing.length === 0, `no ${missing.join(', ')} in ${GOLDEN_DIR}; set GOLDEN_DIR`);
}

/** The `vit` metadata of a golden file (the generator's backbone configuration). */
export interface VitMeta {
  img_size: number;
  patch_size: number;
  embed_dim: number;
  depth: number;
  num_heads: number;
  mlp_ratio: number;
  ln_eps: number;
}

/** The `head` metadata of a golden file. */
export interface HeadMeta {
  in_dim: number;
  hidden_dim: number;
  bottleneck_dim: number;
  out_dim: number;
  norm_last_layer: boolean;
}

export class Golden {
  private constructor(
    readonly file: SafeFile,
    readonly name: string,
  ) {}

  static async load(name: string): Promise<Golden> {
    return new Golden(await readSafetensors(path.join(GOLDEN_DIR, name)), name);
  }

  has(key: string): boolean {
    return this.file.tensors.has(key);
  }

  keys(prefix = ''): string[] {
    return [...this.file.tensors.keys()].filter((k) => k.startsWith(prefix));
  }

  shape(key: string): number[] {
    return this.get(key).shape;
  }

  f32(key: string): Float32Array {
    return toFloat32(this.get(key));
  }

  scalar(key: string): number {
    return Number(toTypedArray(this.get(key))[0]);
  }

  ints(key: string): number[] {
    return Array.from(toTypedArray(this.get(key)), Number);
  }

  meta<T>(key: string): T {
    const v = this.file.metadata[key];
    if (v === undefined) throw new Error(`${this.name}: no metadata '${key}'`);
    return JSON.parse(v) as T;
  }

  private get(key: string) {
    const t = this.file.tensors.get(key);
    if (!t) throw new Error(`${this.name}: no key '${key}'`);
    return t;
  }
}
