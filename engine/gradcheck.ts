// gradcheck: torch.autograd.gradcheck for a custom op, in float32. The gradients backward() gives are
// compared with central finite differences of the same function, element by element. Float32 makes the
// differences coarse (eps 1e-2, tolerance 1e-2 relative), which still catches the usual bugs of a
// hand-written backward: a missing term, a wrong sign, a transposed or broadcast-reduced gradient.
import { backward } from './backward.js';
import { noGrad } from './autograd.js';
import { mul } from './ops/elementwise.js';
import { sum } from './ops/reduce.js';
import { Rng } from './rng.js';
import { fmt } from './shape.js';
import { fromArray, type Tensor } from './tensor.js';
import { tidy } from './scope.js';

export interface GradcheckOptions {
  /** Finite-difference step, relative to max(1, |x|) (default 1e-2). */
  eps?: number;
  /** A gradient passes when |analytic - numeric| <= atol + rtol |numeric| (defaults 1e-3, 1e-2). */
  atol?: number;
  rtol?: number;
  /** At most this many elements of each input are probed, spread evenly (default 64). */
  samples?: number;
  /** Seed of the random weights w that make the scalar sum(w * fn(...)) (default 0). */
  seed?: number;
  /** Throw on a mismatch, naming the input, the element and both values (default true, as torch). */
  raise?: boolean;
}

export interface GradcheckResult {
  ok: boolean;
  /** Elements probed in all. */
  checked: number;
  /** The worst element: input index, flat element index, both gradients, |difference|. */
  worst: { input: number; index: number; analytic: number; numeric: number; error: number } | null;
}

/**
 * Check `fn`'s gradients with respect to each input: backward() of L = sum(w * fn(...inputs)), w fixed
 * random weights, against (L(x + h) - L(x - h)) / 2h for probed elements. Inputs are f32 tensors; they
 * are read once and not changed.
 */
export async function gradcheck(fn: (...inputs: Tensor<'f32'>[]) => Tensor<'f32'>, inputs: readonly Tensor[], opts: GradcheckOptions = {}): Promise<GradcheckResult> {
  const { eps = 1e-2, atol = 1e-3, rtol = 1e-2, samples = 64, seed = 0, raise = true } = opts;
  inputs.forEach((t, k) => {
    if (t.dtype !== 'f32') throw new Error(`gradcheck: input ${k} is ${t.dtype} ${fmt(t.shape)}; only f32 inputs have gradients`);
  });
  const values = await Promise.all(inputs.map((t) => t.toArray() as Promise<Float32Array>));
  const shapes = inputs.map((t) => t.shape);
  const rng = new Rng(seed);
  let weights: Float32Array | undefined;
  /** L at these input values, and (analytic) the gradient of every input. */
  const loss = async (vals: readonly Float32Array[], withGrad: boolean): Promise<{ value: number; grads?: Float32Array[] }> => {
    const xs = vals.map((v, k) => fromArray(v, shapes[k]));
    for (const x of xs) x.requiresGrad = withGrad;
    try {
      const run = (): Tensor<'f32'> =>
        tidy(() => {
          const y = fn(...xs);
          weights ??= Float32Array.from({ length: y.size }, () => 2 * rng.random() - 1);
          return sum(mul(y, fromArray(weights, y.shape)));
        });
      const L = withGrad ? run() : noGrad(run);
      if (withGrad) backward(L);
      const value = await L.item();
      L.dispose();
      const grads = withGrad ? await Promise.all(xs.map((x) => (x.grad ? (x.grad.toArray() as Promise<Float32Array>) : Promise.resolve(new Float32Array(x.size))))) : undefined;
      return { value, grads };
    } finally {
      for (const x of xs) {
        x.grad?.dispose();
        x.dispose();
      }
    }
  };
  const { grads } = await loss(values, true);
  let worst: GradcheckResult['worst'] = null;
  let checked = 0;
  let ok = true;
  for (const [k, v] of values.entries()) {
    const probe = Math.min(samples, v.length);
    for (let s = 0; s < probe; s++) {
      const i = Math.floor((s * v.length) / probe);
      const h = eps * Math.max(1, Math.abs(v[i]));
      const moved = (d: number): Float32Array[] => values.map((w, j) => (j === k ? Float32Array.from(w, (x, e) => (e === i ? x + d : x)) : w));
      // The step as float32 stores it: x + h and x - h are rounded.
      const [up, down] = [moved(h), moved(-h)];
      const span = up[k][i] - down[k][i];
      const numeric = ((await loss(up, false)).value - (await loss(down, false)).value) / span;
      const analytic = grads![k][i];
      const error = Math.abs(analytic - numeric);
      checked++;
      const pass = error <= atol + rtol * Math.abs(numeric);
      if (!pass) ok = false;
      if (!worst || error > worst.error) worst = { input: k, index: i, analytic, numeric, error };
      if (!pass && raise)
        throw new Error(
          `gradcheck: the gradient of input ${k} ${fmt(shapes[k])} at element ${i} is ${analytic}, but finite differences give ${numeric} (|difference| ${error.toExponential(2)} > ${atol} + ${rtol} x |numeric|)`,
        );
    }
  }
  return { ok, checked, worst };
}
