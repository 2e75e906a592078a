// The shape most suites share: a pure function of random inputs, forward or forward + backward for
// a fixed random output gradient, written once with our ops, once with tfjs ops and (where given)
// once with jax-js ops.
import { backward, noGrad, randn, type Tensor } from '../../engine/index.js';
import { compareSteps, compareWithTfjs, toTf } from '../agree.js';
import type { BenchCase, Instance, Variant, Work } from '../case.js';
import type { Jax, JaxArray } from '../jaxjs/backends.js';
import { jaxPure } from '../jaxjs/ops.js';
import type { Tf, TfTensor } from '../tfjs/backends.js';

export interface PureCase {
  suite: string;
  name: string;
  work: Work;
  quick?: boolean;
  /** Input shapes (seeded normal values, `scales` times); every input gets a gradient when `withBackward`. */
  shapes: number[][];
  scales?: number[];
  seed: number;
  withBackward: boolean;
  /** The output's shape (for the random output gradient). */
  outShape: number[];
  ours(xs: Tensor[]): Tensor;
  composed?: { what: string; f(xs: Tensor[]): Tensor };
  tfjs: { what: string; f(tf: Tf, xs: TfTensor[]): TfTensor };
  /** The same maths with jax-js ops (jitted; vjp for the backward); `f` consumes its inputs. */
  jax?: { what: string; f(jax: Jax, xs: JaxArray[]): JaxArray };
  /** Names of the compared results: the output, then one gradient per input. */
  names: string[];
  tolerance: number;
}

/** Forward, or forward then backward: [out, ...input grads]. */
function run(f: (xs: Tensor[]) => Tensor, xs: Tensor[], g: Tensor<'f32'>, withBackward: boolean): Tensor[] {
  if (!withBackward) return [noGrad(() => f(xs))];
  const out = f(xs);
  backward(out, g);
  return [
    out,
    ...xs.map((x) => {
      const dx = x.grad!;
      x.grad = null;
      return dx;
    }),
  ];
}

/** tfjs forward, or value and gradients for the output gradient `dy`. */
export function tfRun(tf: Tf, f: (xs: TfTensor[]) => TfTensor, xs: TfTensor[], dy: TfTensor, withBackward: boolean): TfTensor[] {
  if (!withBackward) return [f(xs)];
  const { value, grads } = tf.valueAndGrads((...args: TfTensor[]) => f(args))(xs, dy);
  return [value, ...grads];
}

export function pureCase(p: PureCase): BenchCase {
  return {
    suite: p.suite,
    name: p.name,
    work: p.work,
    quick: p.quick,
    unfused: p.composed?.what,
    tfjs: p.tfjs.what,
    jax: p.jax?.what,
    setup(): Instance {
      const xs = p.shapes.map((s, i) => randn(s, p.seed + i, 0, p.scales?.[i] ?? 1));
      for (const x of xs) x.requiresGrad = p.withBackward;
      const g = randn(p.outShape, p.seed + 99);
      const fused: Variant = { step: () => run(p.ours, xs, g, p.withBackward) };
      const composed = p.composed;
      const unfused: Variant | undefined = composed && { step: () => run(composed.f, xs, g, p.withBackward) };
      const names = p.withBackward ? p.names : p.names.slice(0, 1);
      const jax = p.jax;
      return {
        fused,
        unfused,
        agree: unfused && (() => compareSteps(fused, unfused, names, p.tolerance)),
        async tfjs(tf) {
          const txs: TfTensor[] = [];
          for (const x of xs) txs.push(await toTf(tf, x));
          const dy = await toTf(tf, g);
          const step = (): TfTensor[] => tfRun(tf, (a) => p.tfjs.f(tf, a), txs, dy, p.withBackward);
          return {
            step,
            agree: () => compareWithTfjs(tf, fused, step, names, p.tolerance),
            dispose: () => tf.dispose([...txs, dy]),
          };
        },
        jax: jax && ((env, device) => jaxPure(env, device, { f: jax.f, inputs: xs, dy: g, withBackward: p.withBackward, ours: fused, names, tolerance: p.tolerance })),
        dispose: () => [...xs, g].forEach((t) => t.dispose()),
      };
    },
  };
}
