// Teacher EMA over a ViT-S-sized arena: one fused dispatch against the per-parameter composition
// teacher <- teacher * m + student * (1 - m) written back into each view, as a PyTorch loop does.
import { add, assign, emaUpdate, mul, noGrad, tidy, type ParameterArena } from '../../engine/index.js';
import { compareArrays } from '../agree.js';
import type { BenchCase, Instance, Sizes, Variant } from '../case.js';
import { arenaCaseName, benchArenas, type BenchArena, flatTf, flatValues, paramCount, randomArena, tfVariables } from './vit-small-arena.js';

const MOMENTUM = 0.996;

function composedEma(teacher: ParameterArena, student: ParameterArena, m: number): void {
  noGrad(() =>
    teacher.entries.forEach((_, i) =>
      tidy(() => {
        const t = teacher.data.view(i);
        assign(t, add(mul(t, m), mul(student.data.view(i), 1 - m)));
      }),
    ),
  );
}

function emaCase(arena: BenchArena): BenchCase {
  const shapes = arena.shapes;
  const P = paramCount(shapes);
  return {
    suite: 'ema',
    name: arenaCaseName(arena),
    // Read teacher and student, write teacher.
    work: { bytes: 3 * P * 4 },
    unfused: 'per parameter: assign(t, add(mul(t, m), mul(s, 1 - m)))',
    tfjs: 'per parameter (one tf.Variable each): t.assign(t * m + s * (1 - m))',
    quick: arena.quick,
    setup(): Instance {
      const student = randomArena(shapes, 400, { label: 'student' });
      const teachers = ['fused', 'unfused'].map((v) => randomArena(shapes, 401, { like: student, label: `teacher (${v})`, requiresGrad: false }));
      const fused: Variant = {
        step: () => {
          emaUpdate(teachers[0], student, MOMENTUM);
          return [];
        },
      };
      const unfused: Variant = {
        step: () => {
          composedEma(teachers[1], student, MOMENTUM);
          return [];
        },
      };
      return {
        fused,
        unfused,
        async agree() {
          fused.step();
          unfused.step();
          return compareArrays(['teacher'], [await flatValues(teachers[0])], [await flatValues(teachers[1])], 1e-5);
        },
        async tfjs(tf) {
          const tt = await tfVariables(tf, teachers[0]);
          const ts = await tfVariables(tf, student);
          const step = (): [] => {
            tt.forEach((t, i) => t.assign(tf.add(tf.mul(t, MOMENTUM), tf.mul(ts[i], 1 - MOMENTUM))));
            return [];
          };
          return {
            step,
            async agree() {
              fused.step();
              tf.tidy(step);
              return compareArrays(['teacher'], [await flatTf(tt)], [await flatValues(teachers[0])], 1e-5);
            },
            dispose: () => tf.dispose([...tt, ...ts]),
          };
        },
        dispose: () => [student, ...teachers].forEach((a) => a.dispose()),
      };
    },
  };
}

export function emaCases(sizes: Sizes): BenchCase[] {
  return benchArenas(sizes).map(emaCase);
}
