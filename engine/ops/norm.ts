// Normalisation ops over the last axis: layerNorm and l2Normalize, each with its backward rule.
import { l2NormalizeBackwardKernel, l2NormalizeKernel, layerNormBackwardKernel, layerNormKernel, layerNormParamGradKernel, PARAM_GRAD_COLS } from '../../kernels/layernorm.js';
import { recordOp } from '../autograd.js';
import { fmt, sameShape } from '../shape.js';
import { empty, emptyOrInto, type Tensor } from '../tensor.js';
import { fill } from './elementwise.js';
import { assertFloat, launch, opLabel } from './launch.js';
import { reduceRaw } from './primitives.js';
import { alongAxis, launchRows, rowsOf } from './softmax.js';

/**
 * Layer normalisation over the last axis (torch.nn.functional.layer_norm with normalized_shape
 * [D]): (x - mean) / sqrt(biased var + eps) * weight + bias, weight and bias of shape [D], each optional.
 */
export function layerNorm(x: Tensor, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor<'f32'> {
  const given = [x, weight, bias].filter((t): t is Tensor => !!t);
  const label = opLabel('layerNorm', given);
  assertFloat('layerNorm', ...given);
  if (x.rank === 0) throw new Error(`${label}: x needs at least one axis`);
  const { rows, d } = rowsOf(x);
  for (const [what, t] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (t && !sameShape(t.shape, [d])) {
      throw new Error(`${label}: ${what} of shape ${fmt(t.shape)} does not match the last axis of x ${fmt(x.shape)} (expected [${d}])`);
    }
  }
  const affine = !!(weight || bias);
  // One affine kernel covers weight-only and bias-only: the missing one is filled with its identity.
  const w = affine ? (weight ?? fill([d], 1)) : undefined;
  const b = affine ? (bias ?? fill([d], 0)) : undefined;
  const y = empty(x.shape, 'f32', label);
  const mean = empty([rows], 'f32', label);
  const rstd = empty([rows], 'f32', label);
  launchRows((serial) => layerNormKernel(affine, serial), rows, d, eps, [y, mean, rstd], w && b ? [x, w, b] : [x], label);
  if (b && b !== bias) b.dispose();

  recordOp(
    'layerNorm',
    given,
    [y],
    ([g], [sx, smean, srstd, sw], needs, into, pending) => {
      const grads: (Tensor<'f32'> | null)[] = [null];
      if (needs[0]) {
        grads[0] = empty(x.shape, 'f32', `${label} backward`);
        // x's gradient from its other uses (the residual stream's skip) is added here, not by a dispatch of its own.
        const prev = pending.of[0];
        const operands = [g!, sx, smean, srstd, ...(sw ? [sw] : []), ...(prev ? [prev] : [])];
        launchRows((serial) => layerNormBackwardKernel(affine, !!prev, serial), rows, d, 0, [grads[0]], operands, `${label} backward`);
        if (prev) pending.folded(0);
      }
      const wantW = !!weight && needs[1];
      const wantB = !!bias && needs[given.length - 1];
      if (wantW || wantB) {
        const [dw, db] = layerNormParamGrads(g!, sx, smean, srstd, rows, d, `${label} backward`, wantW ? into[1] : undefined, wantB ? into[given.length - 1] : undefined);
        if (weight) grads.push(wantW ? dw : null);
        if (bias) grads.push(wantB ? db : null);
      }
      return grads;
    },
    w ? [x, mean, rstd, w] : [x, mean, rstd],
  );
  if (w && w !== weight) w.dispose();
  mean.dispose();
  rstd.dispose();
  return y;
}

/**
 * Rows per chunk of the dweight/dbias partial sums. Up to 2^20 elements, one chunk: the kernel
 * writes the sums themselves (into the parameters' gradient slots where given), one dispatch where
 * chunks took five (partials, two sums, two accumulations) at the omniglot step's 320 rows.
 * Beyond, chunks of at least 64 rows, at most 256 of them, so the rows keep enough workgroups busy.
 */
function paramGradChunk(rows: number, d: number): number {
  return rows * d <= 1 << 20 ? rows : Math.max(64, Math.ceil(rows / 256));
}

/** dweight = sum over rows of g * xhat, dbias = sum over rows of g: chunked partials, then a sum. */
function layerNormParamGrads(
  g: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  rows: number,
  d: number,
  label: string,
  intoW?: Tensor<'f32'>,
  intoB?: Tensor<'f32'>,
): [Tensor<'f32'>, Tensor<'f32'>] {
  if (rows === 0) return [fill([d], 0), fill([d], 0)];
  const chunk = paramGradChunk(rows, d);
  const chunks = Math.ceil(rows / chunk);
  if (chunks === 1) {
    const dw = emptyOrInto(intoW, [d], label);
    const db = emptyOrInto(intoB, [d], label);
    launch(layerNormParamGradKernel(), { rows, d, chunk }, [dw, db], [g, x, mean, rstd], [Math.ceil(d / PARAM_GRAD_COLS), 1, 1], label);
    return [dw, db];
  }
  const pw = empty([chunks, d], 'f32', label);
  const pb = empty([chunks, d], 'f32', label);
  launch(layerNormParamGradKernel(), { rows, d, chunk }, [pw, pb], [g, x, mean, rstd], [Math.ceil(d / PARAM_GRAD_COLS), chunks, 1], label);
  const out: [Tensor<'f32'>, Tensor<'f32'>] = [reduceRaw('sum', pw, [0], 1, label, intoW), reduceRaw('sum', pb, [0], 1, label, intoB)];
  pw.dispose();
  pb.dispose();
  return out;
}

/**
 * x / max(||x||_2, eps) along `axis` (torch.nn.functional.normalize with p = 2). Below eps the
 * divisor is eps itself, and the gradient is g / eps, as PyTorch's.
 */
export function l2Normalize(x: Tensor, axis = -1, eps = 1e-12): Tensor<'f32'> {
  assertFloat('l2Normalize', x);
  return alongAxis('l2Normalize', x, axis, (t) => l2NormalizeLast(t, eps));
}

function l2NormalizeLast(x: Tensor, eps: number): Tensor<'f32'> {
  const label = opLabel('l2Normalize', [x]);
  const { rows, d } = rowsOf(x);
  const y = empty(x.shape, 'f32', label);
  launchRows((serial) => l2NormalizeKernel(serial), rows, d, eps, [y], [x], label);
  recordOp(
    'l2Normalize',
    [x],
    [y],
    ([g], [sx]) => {
      const dx = empty(x.shape, 'f32', `${label} backward`);
      launchRows((serial) => l2NormalizeBackwardKernel(serial), rows, d, eps, [dx], [g!, sx], `${label} backward`);
      return [dx];
    },
    [x],
  );
  return y;
}
