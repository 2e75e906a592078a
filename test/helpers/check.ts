// Test helpers: seeded random data, float64 finite differences, closeness checks, and the one
// harness every op test uses (forward against a float64 reference, backward against central
// finite differences of that reference).
import * as assert from 'uvu/assert';
import { backward, fromArray, init, keep, tidy, type Tensor } from '../../engine/index.js';
import { numel } from '../../engine/shape.js';

export type F64 = Float64Array;

/** Initialise the engine once for the whole test process. */
export async function gpu(): Promise<void> {
  await init();
}

/** mulberry32: a small seeded generator, so every failure is reproducible from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [lo, hi). */
export function randArray(n: number, r: () => number, lo = -1, hi = 1): F64 {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

/** A random integer in [lo, hi]. */
export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** A random dimension size: 1 now and then, otherwise 2..max (mostly not a multiple of any tile size). */
export function awkwardDim(r: () => number, max = 37): number {
  return r() < 0.15 ? 1 : randInt(r, 2, max);
}

/** max |a - b| / max(|b|, floor): the scale-relative error of the golden README. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-30): number {
  assert.is(a.length, b.length, `length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = floor;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= num)) num = Number.isNaN(d) ? Infinity : d;
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

/** Assert `actual` matches `expected` to `tol` relative to the expected values' scale. */
export function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  const e = relErr(actual, expected);
  if (!(e <= tol)) {
    let worst = 0;
    for (let i = 0; i < actual.length; i++) if (Math.abs(actual[i] - expected[i]) > Math.abs(actual[worst] - expected[worst]) || Number.isNaN(actual[i])) worst = i;
    assert.unreachable(`${what}: relative error ${e.toExponential(2)} > ${tol} (at ${worst}: got ${actual[worst]}, expected ${expected[worst]})`);
  }
}

/**
 * Central finite differences of sum(f(x) * g) with respect to every element of every input,
 * in float64 (f is the float64 reference).
 */
export function finiteDiff(f: (xs: F64[]) => F64, xs: F64[], g: F64, h = 1e-6, which?: boolean[]): F64[] {
  const dot = (y: F64): number => {
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * g[i];
    return s;
  };
  return xs.map((x, k) => {
    const grad = new Float64Array(x.length);
    if (which && !which[k]) return grad;
    for (let i = 0; i < x.length; i++) {
      const keepV = x[i];
      const step = h * Math.max(1, Math.abs(keepV));
      x[i] = keepV + step;
      const up = dot(f(xs));
      x[i] = keepV - step;
      const down = dot(f(xs));
      x[i] = keepV;
      grad[i] = (up - down) / (2 * step);
    }
    return grad;
  });
}

export interface OpCase {
  /** What the failure message calls this case. */
  name: string;
  shapes: number[][];
  /** The op under test, on GPU tensors. */
  gpu: (xs: Tensor<'f32'>[]) => Tensor;
  /** The float64 reference of the same op. */
  ref: (xs: F64[]) => F64;
  /** Input values: default uniform in [-1, 1). */
  init?: (k: number, n: number, r: () => number) => F64;
  /** Which inputs get gradients checked (default all). */
  grad?: boolean[];
  seed?: number;
  fwdTol?: number;
  bwdTol?: number;
  /** Finite-difference step (relative). */
  h?: number;
}

/**
 * Forward against the float64 reference; backward (the gradient of sum(op(x) * g) for a random
 * g) against central finite differences of the reference.
 */
export async function checkOp(c: OpCase): Promise<void> {
  const r = rng(c.seed ?? 1);
  const xs = c.shapes.map((s, k) => (c.init ? c.init(k, numel(s), r) : randArray(numel(s), r)));
  const expected = c.ref(xs);
  const which = c.grad ?? c.shapes.map(() => true);
  const g = randArray(expected.length, r);
  const inputs = c.shapes.map((s, k) => {
    const t = keep(fromArray(xs[k], s));
    t.requiresGrad = which[k];
    return t;
  });
  try {
    const y = keep(tidy(() => c.gpu(inputs)));
    const got = await y.toArray();
    close(got, expected, c.fwdTol ?? 1e-5, `${c.name} forward`);
    if (!which.some(Boolean)) {
      y.dispose();
      return;
    }
    const gt = keep(fromArray(g, y.shape));
    backward(y, gt);
    gt.dispose();
    y.dispose();
    const fd = finiteDiff(c.ref, xs, g, c.h ?? 1e-6, which);
    for (let k = 0; k < inputs.length; k++) {
      if (!which[k]) continue;
      const grad = inputs[k].grad;
      assert.ok(grad, `${c.name}: input ${k} got no gradient`);
      close(await grad!.toArray(), fd[k], c.bwdTol ?? 2e-3, `${c.name} gradient of input ${k}`);
    }
  } finally {
    for (const t of inputs) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}

/** The message of the error `f` throws or rejects with (failing the test when it does not). */
export async function errorMessage(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

/** The promise rejects with a message matching `re`. */
export async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}
