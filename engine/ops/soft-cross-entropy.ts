// Soft-target cross-entropy of the DINO/iBOT/SMKD distillation losses, row-wise and over masked
// pairs, and the in-place centre EMA. The teacher side (teacher outputs, centre) is a constant:
// no gradient flows to it, as the reference code detaches it.
import { grid1d, MAX_GROUPS, type UniformValues } from '../../kernels/kernel.js';
import {
  CENTER_COLS,
  centerUpdateKernel,
  maskedPairKernel,
  maskedPairSerialKernel,
  PAIR_GRAD_WG,
  PAIR_TILE,
  rowGrid,
  SERIAL_WG,
  softCrossEntropyRowsGradKernel,
  softCrossEntropyRowsGradSerialKernel,
  softCrossEntropyRowsKernel,
  softCrossEntropyRowsSerialKernel,
  temperedSoftmaxKernel,
  temperedSoftmaxSerialKernel,
  type RowsVariant,
} from '../../kernels/soft-cross-entropy.js';
import { softwarePaths } from '../tuning.js';
import { isGradEnabled, noGrad, recordOp } from '../autograd.js';
import { fmt, numel, sameShape } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { affine, fill, mul } from './elementwise.js';
import { assertFloat, launch, opLabel } from './launch.js';
import { narrow, reshape } from './layout.js';
import { sum } from './reduce.js';

/** Longest row (classes) a serial kernel walks alone: a float32 sum of that many terms, as softmax.ts. */
const SERIAL_MAX_C = 1024;
/** Largest teacher rows x classes a serial pair thread walks (the omniglot presets: 4-16 x 256). */
const SERIAL_MAX_PAIR_WORK = 1 << 15;
let forcedSerial: boolean | undefined;

/** For tests and benchmarks: force the serial (true) or the workgroup (false) kernels; undefined restores the choice by size. */
export function useSerialSoftCrossEntropy(on?: boolean): void {
  forcedSerial = on;
}

/**
 * Serial kernels (kernels/soft-cross-entropy.ts) on a software adapter for rows up to SERIAL_MAX_C
 * classes: at the omniglot preset's sizes ([256, 256] rows, pairs of 4 x 4 rows of 256) the workgroup
 * kernels' reductions and barriers were most of their time (bench/NOTES.md, "Cold start").
 */
function serial(C: number, pairWork = 0): boolean {
  return forcedSerial ?? (softwarePaths() && C <= SERIAL_MAX_C && pairWork <= SERIAL_MAX_PAIR_WORK);
}

export interface DistillTemperatures {
  /** τ_s: the student logits are divided by it. */
  studentTemp: number;
  /** τ_t: the centred teacher logits are divided by it. */
  teacherTemp: number;
  /** Subtracted from every teacher row before the temperature: C elements, any shape ([C], the reference code's [1, C]...; docs/algorithm.md §5.8). */
  center?: Tensor;
}

export interface SoftCrossEntropyOptions extends DistillTemperatures {
  /** Per-row weight, shape = the student's leading shape: loss_i * weight_i (MIM mask, patch weights). */
  weight?: Tensor;
  /**
   * i32, shape = the student's leading shape: student row i is compared with teacher row
   * teacherIndex[i] (teacher viewed as [Nt, C]), so patch matching needs no gather of teacher rows.
   * Out-of-range entries are clamped to 0..Nt-1 on the GPU (not checked, that would need a read-back).
   */
  teacherIndex?: Tensor;
}

interface Checked {
  C: number;
  label: string;
}

function checkCommon(op: string, student: Tensor, teacher: Tensor, o: DistillTemperatures, extra: Tensor[]): Checked {
  const label = opLabel(op, [student, teacher, ...extra]);
  assertFloat(op, student, teacher);
  for (const [name, v] of [
    ['studentTemp', o.studentTemp],
    ['teacherTemp', o.teacherTemp],
  ] as const) {
    if (!(v > 0) || !Number.isFinite(v)) throw new Error(`${label}: ${name} must be a positive finite number, got ${v}`);
  }
  if (student.rank < 1 || teacher.rank < 1) throw new Error(`${label}: student and teacher need a class axis (last axis)`);
  const C = student.shape[student.rank - 1];
  if (C < 1) throw new Error(`${label}: the class axis is empty`);
  if (teacher.shape[teacher.rank - 1] !== C) {
    throw new Error(`${label}: student ${fmt(student.shape)} and teacher ${fmt(teacher.shape)} differ in the number of classes (last axis)`);
  }
  if (o.center) {
    assertFloat(op, o.center);
    if (o.center.size !== C) throw new Error(`${label}: center ${fmt(o.center.shape)} must hold ${C} values, one per class`);
  }
  return { C, label };
}

/**
 * Soft cross-entropy per row: student [..., C], teacher [..., C] (or [Nt, C] rows picked by
 * `teacherIndex`) -> loss [...], loss_i = -sum_c P[i, c] log S[i, c] * weight_i with
 * P = softmax((teacher - center) / teacherTemp), log S = log_softmax(student / studentTemp).
 * Gradients flow to `student` (w.r.t. the raw outputs, the 1/studentTemp factor included) and to
 * `weight`; the teacher and the centre are constants. The centre is copied when a gradient is
 * recorded, so `updateCenter` may run between this forward and `backward()` (SMKD's step order).
 */
export function softCrossEntropy(student: Tensor, teacher: Tensor, options: SoftCrossEntropyOptions): Tensor<'f32'> {
  const { center, weight, teacherIndex, studentTemp, teacherTemp } = options;
  const extra = [center, weight, teacherIndex].filter((t): t is Tensor => t !== undefined);
  const { C, label } = checkCommon('softCrossEntropy', student, teacher, options, extra);
  const lead = student.shape.slice(0, -1);
  const N = numel(lead);
  const Nt = teacher.size / C;
  if (teacherIndex) {
    if (teacherIndex.dtype !== 'i32' || !sameShape(teacherIndex.shape, lead)) {
      throw new Error(`${label}: teacherIndex must be an i32 tensor of shape ${fmt(lead)}, got ${teacherIndex.describe()}`);
    }
    if (Nt < 1 && N > 0) throw new Error(`${label}: teacherIndex picks rows of an empty teacher`);
  } else if (!sameShape(teacher.shape, student.shape)) {
    throw new Error(`${label}: student ${fmt(student.shape)} and teacher ${fmt(teacher.shape)} must have the same shape (or pass teacherIndex)`);
  }
  if (weight) {
    assertFloat('softCrossEntropy', weight);
    if (!sameShape(weight.shape, lead)) throw new Error(`${label}: weight ${fmt(weight.shape)} must have the student's leading shape ${fmt(lead)}`);
  }
  const v: RowsVariant = { centered: !!center, indexed: !!teacherIndex, weighted: !!weight };
  const optional = [center, teacherIndex, weight].filter((t): t is Tensor => t !== undefined);
  const temps = { studentTemp, teacherTemp };

  const loss = empty(lead, 'f32', label);
  const stats = empty([3, N], 'f32', `${label} stats`);
  if (serial(C)) launch(softCrossEntropyRowsSerialKernel(v), { N, C, Nt, ...temps }, [loss, stats], [student, teacher, ...optional], grid1d(N, SERIAL_WG), label);
  else launch(softCrossEntropyRowsKernel(v), { N, C, Nt, ...temps }, [loss, stats], [student, teacher, ...optional], rowGrid(N), label);

  const inputs = weight ? [student, weight] : [student];
  if (isGradEnabled() && inputs.some((x) => x.requiresGrad)) {
    // The centre is state that updateCenter overwrites in place: keep the value this loss used.
    const centerUsed = center ? noGrad(() => affine(center, 1, 0)) : undefined;
    const savedOptional = [centerUsed, teacherIndex, weight].filter((t): t is Tensor => t !== undefined);
    recordOp(
      'softCrossEntropy',
      inputs,
      [loss],
      ([g], [st, s, t, ...opt], needs) => {
        const gradLabel = `${label} backward`;
        let ds: Tensor<'f32'> | null = null;
        if (needs[0]) {
          ds = empty(student.shape, 'f32', gradLabel);
          const u = { n: N * C, N, C, Nt, ...temps };
          if (serial(C)) launch(softCrossEntropyRowsGradSerialKernel(v), u, [ds], [g!, st, s, t, ...opt], grid1d(N, SERIAL_WG), gradLabel);
          else launch(softCrossEntropyRowsGradKernel(v), u, [ds], [g!, st, s, t, ...opt], grid1d(N * C), gradLabel);
        }
        const dw = weight && needs[1] ? mul(g!, reshape(narrow(st, 0, 2, 1), lead)) : null;
        return [ds, dw];
      },
      [stats, student, teacher, ...savedOptional],
    );
    centerUsed?.dispose();
  }
  stats.dispose();
  return loss;
}

/**
 * Masked all-pairs soft cross-entropy: student [Ns, C], teacher [Nt, C], pairMask [Nt, Ns] (f32,
 * 0/1 or any weights) -> the scalar sum_ij pairMask[i, j] * H(P_i, S_j), with P and log S as in
 * `softCrossEntropy`. Returns that sum, NOT a mean: divide by the pair count `sum(pairMask)` (or any
 * other count the loss defines) yourself. Leading batch axes are independent problems, as in bmm:
 * student [..., Ns, C], teacher [..., Nt, C], pairMask [..., Nt, Ns] -> one sum per batch entry [...].
 * P and log S are computed once per row; the pair sum is -sum_j <(M^T P)_j, log S_j>, a tiled
 * reduction that never stores M^T P. Gradient to the student only:
 * (1/studentTemp) (m_j softmax(s_j / studentTemp) - (M^T P)_j), m_j = sum_i M[i, j].
 */
export function softCrossEntropyPairs(student: Tensor, teacher: Tensor, pairMask: Tensor, options: DistillTemperatures): Tensor<'f32'> {
  const { center, studentTemp, teacherTemp } = options;
  const { C, label } = checkCommon('softCrossEntropyPairs', student, teacher, options, [pairMask, ...(center ? [center] : [])]);
  const batch = student.shape.slice(0, -2);
  if (student.rank < 2 || teacher.rank !== student.rank || !sameShape(teacher.shape.slice(0, -2), batch)) {
    throw new Error(`${label}: student [..., Ns, C] and teacher [..., Nt, C] need the same leading batch axes`);
  }
  const B = numel(batch);
  const Ns = student.shape[student.rank - 2];
  const Nt = teacher.shape[teacher.rank - 2];
  assertFloat('softCrossEntropyPairs', pairMask);
  const maskShape = [...batch, Nt, Ns];
  if (!sameShape(pairMask.shape, maskShape)) throw new Error(`${label}: pairMask ${fmt(pairMask.shape)} must be [..., teacher rows, student rows] = ${fmt(maskShape)}`);
  if (pairMask.requiresGrad) throw new Error(`${label}: pairMask is treated as a constant and must not require a gradient (detach it)`);

  const tilesC = Math.ceil(C / PAIR_TILE);
  const tilesJ = Math.ceil(Ns / PAIR_TILE);
  if (tilesC > MAX_GROUPS || B > MAX_GROUPS) throw new Error(`${label}: more than ${MAX_GROUPS} class tiles or batch entries`);
  const rowsSerial = serial(C);
  const pairsSerial = serial(C, Nt * C) && B * Ns <= MAX_GROUPS;
  const softmaxRows = (log: boolean, centered: boolean, R: number, temp: number, inputs: Tensor[], out: Tensor): void => {
    if (rowsSerial) launch(temperedSoftmaxSerialKernel(log, centered), { R, C, temp }, [out], inputs, grid1d(R, SERIAL_WG), label);
    else launch(temperedSoftmaxKernel(log, centered), { R, C, temp }, [out], inputs, rowGrid(R), label);
  };
  const probs = empty([B * Nt, C], 'f32', `${label} teacher probabilities`);
  softmaxRows(false, !!center, B * Nt, teacherTemp, center ? [teacher, center] : [teacher], probs);
  const logProbs = empty([B * Ns, C], 'f32', `${label} student log-probabilities`);
  softmaxRows(true, false, B * Ns, studentTemp, [student], logProbs);
  const pairUniforms: UniformValues = pairsSerial ? { rows: B * Ns, Nt, Ns, C, studentTemp } : { Nt, Ns, C, studentTemp };
  const grid: [number, number, number] = [tilesC, tilesJ, B];

  let loss: Tensor<'f32'>;
  if (tilesJ === 0) loss = fill(batch, 0);
  else {
    const partials = empty([B, pairsSerial ? Ns : tilesJ * tilesC], 'f32', `${label} partial sums`);
    if (pairsSerial) launch(maskedPairSerialKernel('loss'), pairUniforms, [partials], [pairMask, probs, logProbs], grid1d(B * Ns, SERIAL_WG), label);
    else launch(maskedPairKernel('loss'), pairUniforms, [partials], [pairMask, probs, logProbs], grid, label);
    const sums = noGrad(() => sum(partials, 1));
    loss = reshape(sums, batch);
    partials.dispose();
    sums.dispose();
  }
  recordOp(
    'softCrossEntropyPairs',
    [student],
    [loss],
    ([g], [m, p, ls]) => {
      const gradLabel = `${label} backward`;
      const ds = empty(student.shape, 'f32', gradLabel);
      if (pairsSerial) launch(maskedPairSerialKernel('grad'), pairUniforms, [ds], [m, p, ls, g!], [Math.ceil(C / PAIR_GRAD_WG), B * Ns, 1], gradLabel);
      else launch(maskedPairKernel('grad'), pairUniforms, [ds], [m, p, ls, g!], grid, gradLabel);
      return [ds];
    },
    [pairMask, probs, logProbs],
  );
  probs.dispose();
  logProbs.dispose();
  return loss;
}

/**
 * The centre EMA of DINO/iBOT (docs/algorithm.md §5.8), in place: center <- momentum * center + (1 - momentum) *
 * (mean over the rows of teacherOut viewed as [R, C]). It writes into `center`'s own buffer (the
 * centre is state, not part of autograd, nothing is recorded) and returns it. Call it after the
 * loss of the step has been computed from the old centre; the losses above keep a copy of the
 * centre they used, so running it before `backward()` is fine.
 */
export function updateCenter(center: Tensor, teacherOut: Tensor, momentum: number): Tensor {
  const label = opLabel('updateCenter', [center, teacherOut]);
  assertFloat('updateCenter', center, teacherOut);
  const C = center.size;
  if (teacherOut.rank < 1 || teacherOut.shape[teacherOut.rank - 1] !== C || teacherOut.size === 0) {
    throw new Error(`${label}: teacherOut needs at least one row of ${C} values (its last axis must match the centre's ${C} elements)`);
  }
  if (!(momentum >= 0 && momentum <= 1)) throw new Error(`${label}: momentum must be in [0, 1], got ${momentum}`);
  const R = teacherOut.size / C;
  launch(centerUpdateKernel(), { R, C, momentum }, [center], [teacherOut], [Math.ceil(C / CENTER_COLS), 1, 1], label);
  return center;
}
