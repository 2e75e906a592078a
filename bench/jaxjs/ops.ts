// A pure function of some inputs written with jax-js, jitted: forward only, or forward and the input
// gradients for a fixed output gradient (vjp), on copies of our inputs; the shape of the kernel cases.
import type { Tensor } from '../../engine/index.js';
import { compareWithJax } from '../agree.js';
import type { JaxInstance, Variant } from '../case.js';
import { toJax, type Jax, type JaxArray, type JaxDevice, type JaxEnv } from './backends.js';

export interface JaxPure {
  /** The maths, from jax-js ops; consumes its inputs. */
  f(jax: Jax, xs: JaxArray[]): JaxArray;
  /** Our inputs, copied to jax-js. */
  inputs: Tensor[];
  /** The output gradient (when `withBackward`). */
  dy?: Tensor;
  withBackward: boolean;
  /** How many leading inputs get a gradient (default: all); the rest are constants of the backward. */
  differentiate?: number;
  /** Ours, for the agreement check: returns [out, ...input gradients] like the jax-js step. */
  ours: Variant;
  /** Names of the compared results: the output, then (with the backward) one gradient per input. */
  names: readonly string[];
  tolerance: number;
}

export async function jaxPure(env: JaxEnv, device: JaxDevice, p: JaxPure): Promise<JaxInstance> {
  const { jit, vjp } = env.jax;
  const xs: JaxArray[] = [];
  for (const t of p.inputs) xs.push(await toJax(env, t, device));
  const dy = p.withBackward ? await toJax(env, p.dy!, device) : undefined;
  const f = (...a: JaxArray[]): JaxArray => p.f(env.jax, a);
  const fwd = jit((a: JaxArray[]): JaxArray[] => [f(...a)]);
  const n = p.differentiate ?? xs.length;
  const fwdBwd = jit((a: JaxArray[], consts: JaxArray[], g: JaxArray): JaxArray[] => {
    const [y, back] = vjp((...d: JaxArray[]) => f(...d, ...consts), a);
    const grads = back(g) as JaxArray[];
    back.dispose();
    return [y, ...grads];
  });
  const step = (): JaxArray[] => {
    const refs = xs.map((x) => x.ref);
    return dy ? fwdBwd(refs.slice(0, n), refs.slice(n), dy.ref) : fwd(refs);
  };
  return {
    step,
    agree: () => compareWithJax(p.ours, step, p.names, p.tolerance),
    dispose() {
      fwd.dispose();
      fwdBwd.dispose();
      for (const x of xs) x.dispose();
      dy?.dispose();
    },
  };
}
