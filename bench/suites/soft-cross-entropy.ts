// Fused row-wise soft cross-entropy (DINO/iBOT loss with temperatures and centre), forward and
// backward, against the same loss composed from softmax, logSoftmax, mul and sum with autograd.
import { backward, logSoftmax, mul, neg, noGrad, randn, softCrossEntropy, softmax, sub, sum, type Tensor } from '../../engine/index.js';
import { compareSteps, compareWithTfjs, toTf } from '../agree.js';
import type { BenchCase, Instance, Sizes, Variant } from '../case.js';
import type { Jax, JaxArray } from '../jaxjs/backends.js';
import { jaxPure } from '../jaxjs/ops.js';
import type { Tf, TfTensor } from '../tfjs/backends.js';
import { tfRun } from './common.js';

const STUDENT_TEMP = 0.1;
const TEACHER_TEMP = 0.04;

const FULL: [number, number][] = [
  [2048, 1024],
  [512, 8192],
  [128, 65536],
];
const REDUCED: [number, number][] = [
  [67, 256],
  [5, 8191],
  [3, 65537],
];

type Loss = (student: Tensor, teacher: Tensor, center: Tensor) => Tensor;

const fusedLoss: Loss = (s, t, center) => softCrossEntropy(s, t, { studentTemp: STUDENT_TEMP, teacherTemp: TEACHER_TEMP, center });

/** -sum_c softmax((t - center) / τt) * logSoftmax(s / τs), per row. */
function composedLoss(s: Tensor, t: Tensor, center: Tensor): Tensor {
  const p = noGrad(() => softmax(mul(sub(t, center), 1 / TEACHER_TEMP), -1));
  return neg(sum(mul(p, logSoftmax(mul(s, 1 / STUDENT_TEMP), -1)), -1));
}

/** The same loss in tfjs, per row; the teacher side is a constant of the student. */
function tfLoss(tf: Tf, s: TfTensor, t: TfTensor, center: TfTensor): TfTensor {
  const p = tf.softmax(tf.mul(tf.sub(t, center), 1 / TEACHER_TEMP));
  return tf.neg(tf.sum(tf.mul(p, tf.logSoftmax(tf.mul(s, 1 / STUDENT_TEMP))), -1));
}

/** The same loss in jax-js, per row (the gradient is taken for the student only). Consumes its inputs. */
function jaxLoss(jax: Jax, [s, t, center]: JaxArray[]): JaxArray {
  const { nn } = jax;
  const p = nn.softmax(t.sub(center).mul(1 / TEACHER_TEMP), -1);
  return p
    .mul(nn.logSoftmax(s.mul(1 / STUDENT_TEMP), -1))
    .sum(-1)
    .neg();
}

function variant(loss: Loss, s: Tensor, t: Tensor, center: Tensor, g: Tensor<'f32'>): Variant {
  return {
    step: () => {
      const l = loss(s, t, center);
      backward(l, g);
      const ds = s.grad!;
      s.grad = null;
      return [l, ds];
    },
  };
}

function crossEntropyCase(N: number, C: number, seed: number): BenchCase {
  return {
    suite: 'softCrossEntropy',
    name: `fwd+bwd N=${N} C=${C}`,
    // Forward reads student and teacher, backward reads them again and writes the student's gradient.
    work: { bytes: 5 * N * C * 4 },
    unfused: 'neg(sum(softmax((t - c) / τt) * logSoftmax(s / τs))), autograd backward',
    tfjs: 'tf.neg(tf.sum(tf.softmax((t - c) / τt) * tf.logSoftmax(s / τs), -1)), tf.valueAndGrads',
    jax: "jit(-(nn.softmax((t - c) / τt) * nn.logSoftmax(s / τs)).sum(-1)), vjp for the student's gradient",
    quick: C === 1024,
    setup(): Instance {
      const student = randn([N, C], seed);
      student.requiresGrad = true;
      const teacher = randn([N, C], seed + 1);
      const center = randn([C], seed + 2, 0, 0.1);
      const g = randn([N], seed + 3);
      const fused = variant(fusedLoss, student, teacher, center, g);
      const unfused = variant(composedLoss, student, teacher, center, g);
      return {
        fused,
        unfused,
        agree: () => compareSteps(fused, unfused, ['loss', 'dstudent'], 1e-4),
        async tfjs(tf) {
          const xs: TfTensor[] = [];
          for (const x of [student, teacher, center, g]) xs.push(await toTf(tf, x));
          const [ts, tt, tc, tg] = xs;
          const step = (): TfTensor[] => tfRun(tf, ([s]) => tfLoss(tf, s, tt, tc), [ts], tg, true);
          return { step, agree: () => compareWithTfjs(tf, fused, step, ['loss', 'dstudent'], 1e-4), dispose: () => tf.dispose(xs) };
        },
        jax: (env, device) =>
          jaxPure(env, device, {
            f: jaxLoss,
            inputs: [student, teacher, center],
            dy: g,
            withBackward: true,
            differentiate: 1,
            ours: fused,
            names: ['loss', 'dstudent'],
            tolerance: 1e-4,
          }),
        dispose: () => [student, teacher, center, g].forEach((x) => x.dispose()),
      };
    },
  };
}

export function softCrossEntropyCases(sizes: Sizes): BenchCase[] {
  return (sizes === 'full' ? FULL : REDUCED).map(([N, C], i) => crossEntropyCase(N, C, 200 + 10 * i));
}
