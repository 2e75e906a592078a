// AdamW over a ViT-S-sized arena: one fused dispatch against torch's single-tensor update written
// with core ops per parameter (decay, moment updates, bias-corrected step, each written back).
import { add, AdamW, assign, div, mul, noGrad, sqrt, sub, tidy, type ParameterArena } from '../../engine/index.js';
import { compareArrays } from '../agree.js';
import type { BenchCase, Instance, Sizes, Variant } from '../case.js';
import type { Tf } from '../tfjs/backends.js';
import { arenaCaseName, benchArenas, type BenchArena, flatTf, flatValues, paramCount, randomArena, randomize, tfVariables } from './vit-small-arena.js';

const LR = 5e-4;
const WEIGHT_DECAY = 0.04;
const BETAS = [0.9, 0.999] as const;
const EPS = 1e-8;

/** torch.optim.AdamW's _single_tensor_adamw, one parameter at a time, from core ops. */
function composedAdamW(arena: ParameterArena, steps: Uint32Array): void {
  const [b1, b2] = BETAS;
  const m = arena.state('exp_avg');
  const v = arena.state('exp_avg_sq');
  noGrad(() =>
    arena.entries.forEach((e, i) =>
      tidy(() => {
        const t = ++steps[i];
        const p = arena.data.view(i);
        const g = arena.grads.view(i);
        const m1 = add(mul(m.view(i), b1), mul(g, 1 - b1));
        const v1 = add(mul(v.view(i), b2), mul(mul(g, g), 1 - b2));
        const denom = add(div(sqrt(v1), Math.sqrt(1 - b2 ** t)), EPS);
        const decayed = e.decay ? mul(p, 1 - LR * WEIGHT_DECAY) : p;
        assign(p, sub(decayed, mul(div(m1, denom), LR / (1 - b1 ** t))));
        assign(m.view(i), m1);
        assign(v.view(i), v1);
      }),
    ),
  );
}

/**
 * tfjs' own AdamOptimizer.applyGradients (moments, bias corrections from its step count, update), per
 * variable, after torch's decoupled weight decay, which tf.train.adam lacks. Returns the step function.
 */
async function tfAdamW(tf: Tf, arena: ParameterArena, startStep: number) {
  const [b1, b2] = BETAS;
  const p = await tfVariables(tf, arena);
  const g = await tfVariables(tf, arena, 'grad');
  const m = await tfVariables(tf, arena, 'exp_avg');
  const v = await tfVariables(tf, arena, 'exp_avg_sq');
  let t = startStep;
  const step = (): [] => {
    t++;
    arena.entries.forEach((e, i) => {
      if (e.decay) p[i].assign(tf.mul(p[i], 1 - LR * WEIGHT_DECAY));
      m[i].assign(tf.add(tf.mul(m[i], b1), tf.mul(g[i], 1 - b1)));
      v[i].assign(tf.add(tf.mul(v[i], b2), tf.mul(tf.square(g[i]), 1 - b2)));
      const mHat = tf.div(m[i], 1 - b1 ** t);
      const vHat = tf.div(v[i], 1 - b2 ** t);
      p[i].assign(tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), EPS)), -LR), p[i]));
    });
    return [];
  };
  return { step, p, m, v, all: [...p, ...g, ...m, ...v] };
}

/** Random parameters, gradients and moments (second moments positive), the same for every seed. */
function randomAdamArena(shapes: BenchArena['shapes'], label: string): ParameterArena {
  const arena = randomArena(shapes, 500, { label });
  randomize(arena.grads.flat, 501, 0, 1e-2);
  randomize(arena.state('exp_avg').flat, 502, 0, 1e-3);
  const sq = arena.state('exp_avg_sq').flat;
  randomize(sq, 503, 0, 1e-2);
  noGrad(() => tidy(() => assign(sq, mul(sq, sq))));
  return arena;
}

function adamwCase(arena: BenchArena): BenchCase {
  const shapes = arena.shapes;
  const P = paramCount(shapes);
  return {
    suite: 'adamw',
    name: arenaCaseName(arena),
    // Read param, grad and both moments; write param and both moments.
    work: { bytes: 7 * P * 4 },
    unfused: "per parameter: torch's single-tensor AdamW from mul/add/sqrt/div/sub, assign back",
    tfjs: "per parameter (one tf.Variable each): tf.train.adam's update written out, after decoupled decay p.assign(p * (1 - lr·wd))",
    quick: arena.quick,
    setup(): Instance {
      const arenas = ['fused', 'unfused'].map((v) => randomAdamArena(shapes, `params (${v})`));
      const optimizer = new AdamW(arenas[0], { betas: BETAS, eps: EPS });
      const hasGrad = new Uint8Array(arenas[0].entries.length).fill(1);
      const steps = new Uint32Array(arenas[1].entries.length);
      const fused: Variant = {
        step: () => {
          optimizer.step({ lr: LR, weightDecay: WEIGHT_DECAY, hasGrad });
          return [];
        },
      };
      const unfused: Variant = {
        step: () => {
          composedAdamW(arenas[1], steps);
          return [];
        },
      };
      return {
        fused,
        unfused,
        async agree() {
          fused.step();
          unfused.step();
          const which = ['param', 'exp_avg', 'exp_avg_sq'] as const;
          const values: Float32Array[][] = [[], []];
          for (const [k, a] of arenas.entries()) for (const w of which) values[k].push(await flatValues(a, w));
          return compareArrays(which, values[0], values[1], 1e-5);
        },
        async tfjs(tf) {
          const a = await tfAdamW(tf, arenas[0], optimizer.steps[0]);
          return {
            step: a.step,
            async agree() {
              fused.step();
              tf.tidy(a.step);
              const ours = [await flatValues(arenas[0]), await flatValues(arenas[0], 'exp_avg'), await flatValues(arenas[0], 'exp_avg_sq')];
              return compareArrays(['param', 'exp_avg', 'exp_avg_sq'], [await flatTf(a.p), await flatTf(a.m), await flatTf(a.v)], ours, 1e-5);
            },
            dispose: () => tf.dispose(a.all),
          };
        },
        dispose: () => arenas.forEach((a) => a.dispose()),
      };
    },
  };
}

export function adamwCases(sizes: Sizes): BenchCase[] {
  return benchArenas(sizes).map(adamwCase);
}
