// Fused attention: scaledDotProductAttention (PyTorch's F.scaled_dot_product_attention) with its
// flash-attention backward, and clsAttention, the head-averaged attention of the [cls] query.
import {
  attentionForwardKernel,
  attentionGradKVKernel,
  attentionGradQKernel,
  attentionGroups,
  attentionHeadDimSupported,
  attentionRowDotKernel,
  attentionUniforms,
  clsAttentionGroups,
  clsAttentionKernel,
  planRows,
  type AttentionPlan,
} from '../../kernels/attention.js';
import { grid1d, type UniformValues } from '../../kernels/kernel.js';
import { noGrad, recordOp } from '../autograd.js';
import { rt } from '../runtime.js';
import { fixedSubgroupSize, softwarePaths } from '../tuning.js';
import { broadcastShapes, broadcastStrides, fmt, sameShape } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { assertFloat, launch, opLabel } from './launch.js';
import { zeros } from './elementwise.js';
import { concat, narrow } from './layout.js';
import { tidy } from '../scope.js';
import { mean } from './reduce.js';
import { mergeHeads, splitHeads } from './heads.js';

export interface AttentionOptions {
  /**
   * Additive f32 mask added to the scaled scores, broadcastable to [B, H, Tq, Tk]: e.g. a key mask
   * [B, 1, 1, Tk], a shared [Tq, Tk] mask, or a full [B, H, Tq, Tk] one. Use -Infinity (or any value
   * <= -1e30) for masked keys; a row whose keys are all masked that way outputs zeros (PyTorch gives
   * NaN). The mask is a constant: no gradient flows to it.
   */
  mask?: Tensor;
  /** Score scale; default Dh^-0.5. */
  scale?: number;
}

interface Checked {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  Dh: number;
  scale: number;
  maskStrides: number[];
}

function check(op: string, q: Tensor, k: Tensor, v: Tensor | undefined, opts: AttentionOptions): Checked {
  const ts = v ? [q, k, v] : [q, k];
  const label = opLabel(op, opts.mask ? [...ts, opts.mask] : ts);
  assertFloat(op, ...ts);
  if (ts.some((t) => t.rank !== 4)) throw new Error(`${label}: q, k${v ? ', v' : ''} must be [B, H, T, Dh]`);
  const [B, H, Tq, Dh] = q.shape;
  const Tk = k.shape[2];
  if (!sameShape(k.shape, [B, H, Tk, Dh]) || (v && !sameShape(v.shape, k.shape))) {
    throw new Error(`${label}: k${v ? ' and v' : ''} must be [B, H, Tk, Dh] with q's B, H and Dh (q is ${fmt(q.shape)})`);
  }
  return checkSizes(op, label, B, H, Tq, Tk, Dh, opts);
}

/** The head dim, keys, scale and mask of an attention of these sizes (`label` names the call in errors). */
function checkSizes(op: string, label: string, B: number, H: number, Tq: number, Tk: number, Dh: number, opts: AttentionOptions): Checked {
  if (!attentionHeadDimSupported(paddedHeadDim(Dh))) throw new Error(`${label}: head dim ${Dh} is not supported (1 to 128)`);
  if (Tk === 0 && B * H * Tq > 0) throw new Error(`${label}: there are no keys to attend to`);
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  let maskStrides = [0, 0, 0, 0];
  if (opts.mask) {
    const m = opts.mask;
    assertFloat(op, m);
    const full = [B, H, Tq, Tk];
    if (m.rank > 4 || !sameShape(broadcastShapes(`${label} mask`, m.shape, full), full)) {
      throw new Error(`${label}: mask ${fmt(m.shape)} does not broadcast to [B, H, Tq, Tk] = ${fmt(full)}`);
    }
    maskStrides = broadcastStrides(m.shape, full);
  }
  return { B, H, Tq, Tk, Dh, scale, maskStrides };
}

/** The kernels read rows as vec4: other head dims run zero-padded to the next multiple of 4. */
function paddedHeadDim(dh: number): number {
  return Math.ceil(dh / 4) * 4;
}

/**
 * q, k (and v) with zero columns appended up to a multiple of 4. Zero columns add nothing to q·k, and
 * v's give zero output columns that are cut off again; concat and narrow carry the gradients.
 */
function padHeads(ts: Tensor[], dh: number): Tensor[] {
  const extra = paddedHeadDim(dh) - dh;
  return ts.map((t) => concat([t, zeros([...t.shape.slice(0, 3), extra])], 3));
}

/** The plan of each attention kernel. */
export interface AttentionPlans {
  forward: AttentionPlan;
  gradQ: AttentionPlan;
  gradKV: AttentionPlan;
}

// Rows per invocation on a software adapter, measured on lavapipe (Dh = 64, T = 65 and 197, CPU time
// of each kernel, 1 / 2 / 3 rows): every tile row a lane loads and broadcasts then serves that many
// owned rows. Forward 75 / 53 / 44 ms, dQ 91 / 72 / 68, dK/dV 102 / 79 / 81 at T = 197; more rows
// cost compile time (the code is unrolled per row). Real GPUs keep 1 row (register file limits).
// Never more rows than the sequence needs: at T <= lanes (the omniglot preset's T = 5) the extra rows
// were idle code, and the three kernels' first dispatch (LLVM) took 11.1 s at 3 / 2 / 2 rows against
// 5.6 s at 1 (bench/NOTES.md, "Cold start"). Likewise the tile rows unrolled (`tileRows`) when the
// streamed sequence is shorter than a subgroup.
const SOFTWARE_ROWS_PER_LANE = { forward: 3, gradQ: 2, gradKV: 2 };
// Workgroup staging on adapters without one fixed subgroup size: up to 32 lanes (a whole number of
// warps/waves on real GPUs), fewer where the [lanes, Dh] tiles would not fit in workgroup memory.
const WORKGROUP_LANES = 32;
let forcedPlans: AttentionPlans | undefined;

/** For tests and benchmarks: force the kernel plans (undefined restores the automatic choice). */
export function useAttentionPlans(plans?: AttentionPlans): void {
  forcedPlans = plans;
}

/**
 * Subgroup broadcasts where the adapter has one fixed subgroup size, workgroup memory otherwise.
 * `tq` and `tk` (query and key rows) cap the rows per lane on software adapters.
 */
export function attentionPlans(dh: number, tq = Infinity, tk = tq): AttentionPlans {
  if (forcedPlans) return forcedPlans;
  const gpu = rt().gpu;
  const lo = fixedSubgroupSize();
  if (lo !== undefined) {
    const owned = { forward: tq, gradQ: tq, gradKV: tk };
    const streamed = { forward: tk, gradQ: tk, gradKV: tq };
    const rows = (k: keyof AttentionPlans): AttentionPlan => ({
      staging: 'subgroup',
      lanes: lo,
      rowsPerLane: softwarePaths() ? Math.max(1, Math.min(SOFTWARE_ROWS_PER_LANE[k], Math.ceil(owned[k] / lo))) : 1,
      ...(streamed[k] < lo ? { tileRows: Math.max(1, streamed[k]) } : {}),
    });
    return { forward: rows('forward'), gradQ: rows('gradQ'), gradKV: rows('gradKV') };
  }
  const bytesPerLane = (2 * dh + 2) * 4;
  let lanes = WORKGROUP_LANES;
  while (lanes > 1 && lanes * bytesPerLane > gpu.device.limits.maxComputeWorkgroupStorageSize) lanes /= 2;
  const plan: AttentionPlan = { staging: 'workgroup', lanes, rowsPerLane: 1 };
  return { forward: plan, gradQ: plan, gradKV: plan };
}

function uniforms(c: Checked): UniformValues {
  return attentionUniforms(c.B * c.H, c.H, c.Tq, c.Tk, c.scale, c.maskStrides);
}

/**
 * softmax(q k^T * scale + mask) v for q [B, H, Tq, Dh], k and v [B, H, Tk, Dh] -> [B, H, Tq, Dh],
 * fused (the attention matrix is never stored), with gradients for q, k and v.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor<'f32'> {
  const c = check('scaledDotProductAttention', q, k, v, opts);
  if (c.Dh % 4 !== 0) {
    return tidy(() => {
      const [qp, kp, vp] = padHeads([q, k, v], c.Dh);
      return narrow(scaledDotProductAttention(qp, kp, vp, { mask: opts.mask, scale: c.scale }), 3, 0, c.Dh);
    });
  }
  const mask = opts.mask;
  const inputs = mask ? [q, k, v, mask] : [q, k, v];
  const label = opLabel('scaledDotProductAttention', inputs);
  const BH = c.B * c.H;
  const out = empty([c.B, c.H, c.Tq, c.Dh], 'f32', label);
  const lse = empty([c.B, c.H, c.Tq], 'f32', `${label} logsumexp`);
  const u = uniforms(c);
  const plans = attentionPlans(c.Dh, c.Tq, c.Tk);
  if (out.size > 0) launch(attentionForwardKernel(c.Dh, !!mask, plans.forward), u, [out, lse], inputs, attentionGroups(c.Tq, planRows(plans.forward), BH), label);
  recordOp(
    'scaledDotProductAttention',
    [q, k, v],
    [out],
    ([g], saved, needs) => {
      // No queries: nothing reaches k or v (and a zero-length q cannot be bound as vec4 rows).
      if (c.Tq === 0) return [zeros(q.shape), zeros(k.shape), zeros(v.shape)];
      const [sq, sk, sv, so, sl, sm] = saved;
      const bl = `${label} backward`;
      const D = empty([c.B, c.H, c.Tq], 'f32', bl);
      if (D.size > 0) launch(attentionRowDotKernel(c.Dh), { n: D.size }, [D], [g!, so], grid1d(D.size), bl);
      const operands = sm ? [sq, sk, sv, g!, sl, D, sm] : [sq, sk, sv, g!, sl, D];
      let dq: Tensor<'f32'> | null = null;
      if (needs[0]) {
        dq = empty(q.shape, 'f32', bl);
        if (dq.size > 0) launch(attentionGradQKernel(c.Dh, !!sm, plans.gradQ), u, [dq], operands, attentionGroups(c.Tq, planRows(plans.gradQ), BH), bl);
      }
      let dk: Tensor<'f32'> | null = null;
      let dv: Tensor<'f32'> | null = null;
      if (needs[1] || needs[2]) {
        dk = empty(k.shape, 'f32', bl);
        dv = empty(v.shape, 'f32', bl);
        if (dk.size > 0) launch(attentionGradKVKernel(c.Dh, !!sm, plans.gradKV), u, [dk, dv], operands, attentionGroups(c.Tk, planRows(plans.gradKV), BH), bl);
      }
      return [dq, dk, dv];
    },
    mask ? [q, k, v, out, lse, mask] : [q, k, v, out, lse],
  );
  lse.dispose();
  return out;
}

/**
 * Self-attention straight from a fused projection: `qkv` [B, T, 3·H·Dh] (feature = part·H·Dh + head·Dh + e,
 * timm's layout, as splitHeads reads it) -> [B, T, H·Dh], the heads merged. The same values and
 * gradients as `mergeHeads([scaledDotProductAttention(...splitHeads(qkv, 3, heads), opts)])`, without
 * the split and merge: the kernels address the packed rows themselves, and the backward writes dq, dk
 * and dv into one [B, T, 3·H·Dh] gradient (4 dispatches a layer fewer per training step; bench/NOTES.md).
 * Head dims that are not a multiple of 4 take that split path.
 */
export function scaledDotProductAttentionPacked(qkv: Tensor, heads: number, opts: AttentionOptions = {}): Tensor<'f32'> {
  const op = 'scaledDotProductAttentionPacked';
  const mask = opts.mask;
  const inputs = mask ? [qkv, mask] : [qkv];
  const label = opLabel(op, inputs);
  assertFloat(op, qkv);
  const [B, T, F] = qkv.shape;
  if (qkv.rank !== 3 || !Number.isInteger(heads) || heads < 1 || F % (3 * heads) !== 0) {
    throw new Error(`${label}: qkv ${fmt(qkv.shape)} must be [B, T, 3 * heads * Dh] with heads = ${heads}`);
  }
  const H = heads;
  const Dh = F / (3 * H);
  const c = checkSizes(op, label, B, H, T, T, Dh, opts);
  if (Dh % 4 !== 0) {
    return tidy(() => {
      const [q, k, v] = splitHeads(qkv, 3, H);
      return mergeHeads([scaledDotProductAttention(q, k, v, opts)]);
    });
  }
  const BH = B * H;
  const out = empty([B, T, H * Dh], 'f32', label);
  const lse = empty([B, H, T], 'f32', `${label} logsumexp`);
  const u = uniforms(c);
  const plans = attentionPlans(Dh, T, T);
  if (out.size > 0) launch(attentionForwardKernel(Dh, !!mask, plans.forward, 'packed'), u, [out, lse], inputs, attentionGroups(T, planRows(plans.forward), BH), label);
  recordOp(
    op,
    [qkv],
    [out],
    ([g], [sqkv, so, sl, sm]) => {
      const bl = `${label} backward`;
      const dqkv = empty(qkv.shape, 'f32', bl);
      if (dqkv.size === 0) return [dqkv];
      const D = empty([B, H, T], 'f32', bl);
      launch(attentionRowDotKernel(Dh, 'packed'), { n: D.size, T, H }, [D], [g!, so], grid1d(D.size), bl);
      const operands = sm ? [sqkv, g!, sl, D, sm] : [sqkv, g!, sl, D];
      // Two dispatches, one gradient: dq fills the q features of every row, dk/dv the k and v features.
      launch(attentionGradQKernel(Dh, !!sm, plans.gradQ, 'packed'), u, [dqkv], operands, attentionGroups(T, planRows(plans.gradQ), BH), bl);
      launch(attentionGradKVKernel(Dh, !!sm, plans.gradKV, 'packed'), u, [dqkv], operands, attentionGroups(T, planRows(plans.gradKV), BH), bl);
      return [dqkv];
    },
    mask ? [qkv, out, lse, mask] : [qkv, out, lse],
  );
  lse.dispose();
  return out;
}

/**
 * Attention of the [cls] query (row 0) to the patch keys 1..Tk-1, averaged over heads: [B, Tk - 1]
 * from q [B, H, Tq, Dh] and k [B, H, Tk, Dh], with the same scale and mask semantics as
 * scaledDotProductAttention (only mask row 0 is read). No gradient.
 */
export function clsAttention(q: Tensor, k: Tensor, opts: AttentionOptions = {}): Tensor<'f32'> {
  const c = check('clsAttention', q, k, undefined, opts);
  if (c.Dh % 4 !== 0) {
    return tidy(() => {
      const [qp, kp] = noGrad(() => padHeads([q, k], c.Dh));
      return clsAttention(qp, kp, { mask: opts.mask, scale: c.scale });
    });
  }
  const inputs = opts.mask ? [q, k, opts.mask] : [q, k];
  const label = opLabel('clsAttention', inputs);
  if (c.H < 1 || c.Tq < 1 || c.Tk < 1) throw new Error(`${label}: needs at least one head, one query and one key`);
  return noGrad(() => {
    const probs = empty([c.B, c.H, c.Tk - 1], 'f32', label);
    if (probs.size > 0) launch(clsAttentionKernel(c.Dh, !!opts.mask), uniforms(c), [probs], inputs, clsAttentionGroups(c.B * c.H), label);
    const out = mean(probs, 1);
    probs.dispose();
    return out;
  });
}
