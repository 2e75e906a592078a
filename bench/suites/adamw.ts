// AdamW over a ViT-S-sized arena: one fused dispatch against torch's single-tensor update written
// with core ops per parameter (decay, moment updates, bias-corrected step, each written back).
import { add, AdamW, assign, div, mul, noGrad, sqrt, sub, tidy, type ParameterArena } from '../../engine/index.js';
import { compareArrays } from '../agree.js';
import type { BenchCase, Instance, Sizes, Variant } from '../case.js';
import { benchShapes, flatValues, paramCount, randomArena, randomize, arenaCaseName } from './vit-small-arena.js';

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

/** Random parameters, gradients and moments (second moments positive), the same for every seed. */
function randomAdamArena(shapes: ReturnType<typeof benchShapes>, label: string): ParameterArena {
  const arena = randomArena(shapes, 500, { label });
  randomize(arena.grads.flat, 501, 0, 1e-2);
  randomize(arena.state('exp_avg').flat, 502, 0, 1e-3);
  const sq = arena.state('exp_avg_sq').flat;
  randomize(sq, 503, 0, 1e-2);
  noGrad(() => tidy(() => assign(sq, mul(sq, sq))));
  return arena;
}

function adamwCase(sizes: Sizes): BenchCase {
  const shapes = benchShapes(sizes);
  const P = paramCount(shapes);
  return {
    suite: 'adamw',
    name: arenaCaseName(sizes, shapes),
    // Read param, grad and both moments; write param and both moments.
    work: { bytes: 7 * P * 4 },
    unfused: "per parameter: torch's single-tensor AdamW from mul/add/sqrt/div/sub, assign back",
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
        dispose: () => arenas.forEach((a) => a.dispose()),
      };
    },
  };
}

export function adamwCases(sizes: Sizes): BenchCase[] {
  return [adamwCase(sizes)];
}
