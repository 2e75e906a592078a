// Numerical agreement of the variants of a case: fused against unfused, ours against tfjs and jax-js.
import { tidy, type Tensor } from '../engine/index.js';
import type { Agreement, Variant } from './case.js';
import { readJax, type JaxArray } from './jaxjs/backends.js';
import { readTf, type Tf, type TfTensor } from './tfjs/backends.js';

/** max |a - b| / max |b|: the error scaled by the reference's magnitude (NaN counts as infinite). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: ${a.length} values against ${b.length}`);
  let num = 0;
  let den = 1e-30;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= num)) num = Number.isNaN(d) ? Infinity : d;
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

/** Compare named arrays pairwise; the agreement is the worst of them. */
export function compareArrays(names: readonly string[], fused: ArrayLike<number>[], unfused: ArrayLike<number>[], tolerance: number): Agreement {
  const errs = names.map((_, i) => relErr(fused[i], unfused[i]));
  const error = Math.max(...errs);
  const detail = names.map((n, i) => `${n} ${errs[i].toExponential(1)}`).join(', ');
  return { ok: error <= tolerance, error, tolerance, detail };
}

async function readAll(ts: Tensor[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const t of ts) out.push(Float32Array.from(await t.toArray()));
  return out;
}

/** Run each variant once and compare every tensor its step returns (for ops with no state). */
export async function compareSteps(fused: Variant, unfused: Variant, names: readonly string[], tolerance: number): Promise<Agreement> {
  const a = tidy(() => fused.step());
  const b = tidy(() => unfused.step());
  try {
    if (a.length !== names.length || b.length !== names.length)
      throw new Error(`compareSteps: expected ${names.length} results (${names.join(', ')}), got ${a.length} and ${b.length}`);
    return compareArrays(names, await readAll(a), await readAll(b), tolerance);
  } finally {
    for (const t of [...a, ...b]) t.dispose();
  }
}

/** Run ours once and the tfjs version once (same inputs) and compare every result pairwise. */
export async function compareWithTfjs(tf: Tf, ours: Variant, theirs: () => TfTensor[], names: readonly string[], tolerance: number): Promise<Agreement> {
  const a = tidy(() => ours.step());
  const b = tf.tidy(() => theirs());
  try {
    if (a.length !== names.length || b.length !== names.length)
      throw new Error(`compareWithTfjs: expected ${names.length} results (${names.join(', ')}), got ${a.length} and ${b.length}`);
    return compareArrays(names, await readTf(b), await readAll(a), tolerance);
  } finally {
    for (const t of a) t.dispose();
    tf.dispose(b);
  }
}

/** Run ours once and the jax-js version once (same inputs) and compare every result pairwise. */
export async function compareWithJax(ours: Variant, theirs: () => JaxArray[], names: readonly string[], tolerance: number): Promise<Agreement> {
  const a = tidy(() => ours.step());
  try {
    const b = theirs();
    // readJax takes ownership of (and disposes) b's arrays.
    const values = await readJax(b);
    if (a.length !== names.length || b.length !== names.length)
      throw new Error(`compareWithJax: expected ${names.length} results (${names.join(', ')}), got ${a.length} and ${b.length}`);
    return compareArrays(names, values, await readAll(a), tolerance);
  } finally {
    for (const t of a) t.dispose();
  }
}

/** A tfjs tensor holding our tensor's current values. */
export async function toTf(tf: Tf, t: Tensor): Promise<TfTensor> {
  return tf.tensor(Float32Array.from(await t.toArray()), [...t.shape]);
}
