// Matrix products: matmul (batched, broadcasting, transposed reads) and linear layers with a fused
// bias/GELU epilogue. Backward rules reuse the same kernel with flipped transpose flags.
import { binaryKernel, elementwiseUniforms } from '../../kernels/elementwise.js';
import { grid1d } from '../../kernels/kernel.js';
import {
  GPU_TILES,
  LAVAPIPE_TILES,
  MATMUL_MAX_BATCH_RANK,
  matmulGroups,
  matmulKernel,
  matmulUniforms,
  subgroupTiles,
  type MatmulOptions,
  type MatmulTiles,
} from '../../kernels/matmul.js';
import { isGradEnabled, recordOp } from '../autograd.js';
import { fixedSubgroupSize, softwarePaths } from '../tuning.js';
import { broadcastShapes, broadcastStrides, fmt, numel, sameShape } from '../shape.js';
import { empty, emptyOrInto, type Tensor } from '../tensor.js';
import { assertFloat, launch, opLabel } from './launch.js';
import { reshape } from './layout.js';
import { sumTo } from './reduce.js';
import { reduceRaw } from './primitives.js';

export interface MatmulFlags {
  /** Read `a` ([..., K, M]) as its transpose, without materialising it. */
  transA?: boolean;
  /** Read `b` ([..., N, K]) as its transpose, without materialising it. */
  transB?: boolean;
}

/** Sizes of op(a) @ op(b) for operands of rank >= 2, with the broadcast batch. */
interface Geometry {
  M: number;
  N: number;
  K: number;
  batch: number[];
}

function describe(a: Tensor, b: Tensor, ta: boolean, tb: boolean): string {
  return `${fmt(a.shape)}${ta ? '^T' : ''} x ${fmt(b.shape)}${tb ? '^T' : ''}`;
}

function geometry(op: string, a: Tensor, b: Tensor, ta: boolean, tb: boolean): Geometry {
  const [ra, ca] = a.shape.slice(-2);
  const [rb, cb] = b.shape.slice(-2);
  const [M, Ka] = ta ? [ca, ra] : [ra, ca];
  const [Kb, N] = tb ? [cb, rb] : [rb, cb];
  if (Ka !== Kb) throw new Error(`${op}: inner dimensions differ, ${describe(a, b, ta, tb)}`);
  let batch: number[];
  try {
    batch = broadcastShapes(op, a.shape.slice(0, -2), b.shape.slice(0, -2));
  } catch {
    throw new Error(`${op}: batch dimensions do not broadcast, ${describe(a, b, ta, tb)}`);
  }
  return { M, N, K: Ka, batch };
}

/**
 * Batch axes of the launch: per-axis element strides of A and B (0 where broadcast), with axes of
 * size 1 dropped and neighbours that stay contiguous in both operands merged.
 */
function batchAxes(label: string, a: Tensor, b: Tensor, g: Geometry): { shape: number[]; sa: number[]; sb: number[] } {
  const sa = broadcastStrides(a.shape.slice(0, -2), g.batch);
  const sb = broadcastStrides(b.shape.slice(0, -2), g.batch);
  const axes: { n: number; sa: number; sb: number }[] = [];
  g.batch.forEach((n, d) => {
    if (n === 1) return;
    const s = { n, sa: sa[d] * g.M * g.K, sb: sb[d] * g.K * g.N };
    const last = axes[axes.length - 1];
    if (last && last.sa === s.sa * n && last.sb === s.sb * n) Object.assign(last, { n: last.n * n, sa: s.sa, sb: s.sb });
    else axes.push(s);
  });
  if (axes.length > MATMUL_MAX_BATCH_RANK) {
    throw new Error(`${label}: the broadcast batch needs ${axes.length} separate axes, more than the ${MATMUL_MAX_BATCH_RANK} supported`);
  }
  return { shape: axes.map((x) => x.n), sa: axes.map((x) => x.sa), sb: axes.map((x) => x.sb) };
}

let forcedTiles: MatmulTiles | undefined;

/** For tests and benchmarks: force the tiles of every matmul (undefined restores the automatic choice). */
export function useMatmulTiles(t?: MatmulTiles): void {
  forcedTiles = t;
}

/**
 * Products of fewer multiply-adds than this (all batches together) take 16-row subgroup tiles instead
 * of 32: a first dispatch compiles the kernel (LLVM, on lavapipe's one queue thread), and the unrolled
 * 32-row variants cost it 0.8-2.3 s each. The omniglot preset's first step with an empty Mesa cache,
 * every product at 8 / 16 / 32 rows: 12.1 / 12.8 / 18.8 s, matmul variants 3.9 / 4.9 / 11.7 s of it.
 * Run time at its shapes (GPU-side minima, e.g. [320, 64] x [192, 64]ᵀ + b): 8 rows 330 us, 16 rows
 * 258, 32 rows 221, so 16 keeps most of the speed (bench/NOTES.md, "Cold start").
 */
const SMALL_PRODUCT = 1 << 24;

/**
 * On a software adapter, subgroup-broadcast tiles where it has one fixed subgroup size (2.8x the
 * plain lavapipe tiles there; 16 rows per thread for small products, 32 otherwise) and the plain ones
 * otherwise; on a GPU, staged tiles (kernels/matmul.ts). `macs`: the product's multiply-adds.
 */
export function matmulTiles(macs = Infinity): MatmulTiles {
  if (forcedTiles) return forcedTiles;
  if (!softwarePaths()) return GPU_TILES;
  const sg = fixedSubgroupSize();
  if (!sg) return LAVAPIPE_TILES;
  return macs < SMALL_PRODUCT ? subgroupTiles(sg, 16) : subgroupTiles(sg);
}

interface Epilogue {
  bias?: Tensor;
  gelu?: MatmulOptions['gelu'];
  /** Write the product here (a parameter's gradient slot, see BackwardFn) instead of a new tensor. */
  into?: Tensor<'f32'>;
  /** Added to the output last (same shape as the output). */
  residual?: Tensor;
  /** Also write op(a)'s row sums here ([M], one batch only): linear's bias gradient from its dweight product. */
  rowSums?: Tensor<'f32'>;
}

/**
 * Whether a product of `macs` multiply-adds takes row sums in its kernel (Epilogue.rowSums): with the
 * 16-row tiles of small products, where a dispatch saved is what counts; with 32 rows their 32 extra
 * running sums cost the product 5-50 % (fc2's dweight [192, 2080] x [2080, 768]: 19.0 against 12.7 ms
 * with a column-sum dispatch of its own; bench/NOTES.md), so there the caller sums on its own.
 */
function rowSumsInKernel(macs: number): boolean {
  return matmulTiles(macs).rm <= 16;
}

/** op(a) @ op(b) (+ bias, GELU) for operands of rank >= 2, no autograd. `pre` is set for gelu 'out+pre'. */
function mm(a: Tensor, b: Tensor, ta: boolean, tb: boolean, label: string, epi: Epilogue = {}): { out: Tensor<'f32'>; pre?: Tensor<'f32'> } {
  const g = geometry(label, a, b, ta, tb);
  const axes = batchAxes(label, a, b, g);
  const gelu = epi.gelu ?? 'none';
  const shape = [...g.batch, g.M, g.N];
  const out = emptyOrInto(epi.into, shape, label);
  const pre = gelu === 'out+pre' ? empty(shape, 'f32', label) : undefined;
  // vec4 access along an axis needs that axis to be a multiple of 4 (and a non-empty operand to bind).
  const vec = { vecA: g.K > 0 && (ta ? g.M : g.K) % 4 === 0, vecB: g.K > 0 && (tb ? g.K : g.N) % 4 === 0, vecC: g.N % 4 === 0 };
  const t = matmulTiles(g.M * g.N * g.K * numel(g.batch));
  const rowSums = epi.rowSums;
  if (rowSums && (numel(g.batch) !== 1 || rowSums.size !== g.M)) throw new Error(`internal: ${label}: row sums need one batch and [${g.M}] values`);
  const kernel = matmulKernel({
    transA: ta,
    transB: tb,
    bias: epi.bias !== undefined,
    gelu,
    residual: epi.residual !== undefined,
    rowSums: rowSums !== undefined,
    ...vec,
    tiles: t,
  });
  const groups = matmulGroups(label, g.M, g.N, numel(g.batch), t);
  const outputs = [out, ...(pre ? [pre] : []), ...(rowSums ? [rowSums] : [])];
  const inputs = [a, b, ...(epi.bias ? [epi.bias] : []), ...(epi.residual ? [epi.residual] : [])];
  launch(kernel, matmulUniforms(g.M, g.N, g.K, axes.shape, axes.sa, axes.sb), outputs, inputs, groups, label);
  return { out, pre };
}

/**
 * Matrix product with PyTorch semantics: [..., M, K] x [..., K, N] -> [..., M, N] with the batch axes
 * broadcast; a 1-D operand is a row (a) or column (b) vector whose axis is dropped from the result.
 * `transA`/`transB` read an operand transposed ([..., K, M] / [..., N, K]) at no cost.
 */
export function matmul(a: Tensor, b: Tensor, flags: MatmulFlags = {}): Tensor<'f32'> {
  assertFloat('matmul', a, b);
  const ta = flags.transA ?? false;
  const tb = flags.transB ?? false;
  if (a.rank === 0 || b.rank === 0) throw new Error(`matmul: both operands need at least one dimension, got ${describe(a, b, ta, tb)}`);
  if (a.rank >= 2 && b.rank >= 2) {
    geometry('matmul', a, b, ta, tb);
    return matmulBatched(a, b, ta, tb);
  }
  // Vectors become one-row / one-column matrices; check first so the error names the shapes given.
  const Ka = a.rank === 1 ? a.size : a.shape[a.rank - (ta ? 2 : 1)];
  const Kb = b.rank === 1 ? b.size : b.shape[b.rank - (tb ? 1 : 2)];
  if (Ka !== Kb) throw new Error(`matmul: inner dimensions differ, ${describe(a, b, ta, tb)}`);
  const a2 = a.rank === 1 ? reshape(a, ta ? [a.size, 1] : [1, a.size]) : a;
  const b2 = b.rank === 1 ? reshape(b, tb ? [1, b.size] : [b.size, 1]) : b;
  const g = geometry('matmul', a2, b2, ta, tb);
  const y = matmulBatched(a2, b2, ta, tb);
  const shape = [...g.batch, ...(a.rank === 1 ? [] : [g.M]), ...(b.rank === 1 ? [] : [g.N])];
  const out = reshape(y, shape);
  for (const t of [a2, b2, y]) if (t !== a && t !== b) t.dispose();
  return out;
}

function matmulBatched(a: Tensor, b: Tensor, ta: boolean, tb: boolean): Tensor<'f32'> {
  const label = opLabel(`matmul${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}`, [a, b]);
  const { out } = mm(a, b, ta, tb, label);
  recordOp('matmul', [a, b], [out], ([g], [sa, sb], needs) => [needs[0] ? gradA(g!, sa, sb, ta, tb, label) : null, needs[1] ? gradB(g!, sa, sb, ta, tb, label) : null], [a, b]);
  return out;
}

/** dA: dC @ op(B)^T (or its transpose when A is read transposed), summed over A's broadcast batch axes. */
function gradA(g: Tensor<'f32'>, a: Tensor, b: Tensor, ta: boolean, tb: boolean, label: string): Tensor<'f32'> {
  const full = ta ? mm(b, g, tb, true, `${label} backward dA`).out : mm(g, b, false, !tb, `${label} backward dA`).out;
  return sumTo(full, a.shape);
}

/** dB: op(A)^T @ dC (or its transpose when B is read transposed), summed over B's broadcast batch axes. */
function gradB(g: Tensor<'f32'>, a: Tensor, b: Tensor, ta: boolean, tb: boolean, label: string): Tensor<'f32'> {
  const what = `${label} backward dB`;
  const aBatch = numel(a.shape.slice(0, -2));
  // B shared by every batch of a plain A: fold the batch into the contraction, one matmul, no reduction.
  if (numel(b.shape.slice(0, -2)) === 1 && aBatch > 1 && aBatch === numel(g.shape.slice(0, -2)) && !ta) {
    const rows = aBatch * a.shape[a.rank - 2];
    const a2 = reshape(a, [rows, a.shape[a.rank - 1]]);
    const g2 = reshape(g, [rows, g.shape[g.rank - 1]]);
    const d = tb ? mm(g2, a2, true, false, what).out : mm(a2, g2, true, false, what).out;
    return reshape(d, b.shape);
  }
  const full = tb ? mm(g, a, true, ta, what).out : mm(a, g, !ta, false, what).out;
  return sumTo(full, b.shape);
}

/**
 * y = x @ weight^T + bias, with weight [out, in] as torch.nn.Linear stores it; x is [..., in].
 * `residual` ([..., out], like y) is added in the same kernel: y = residual + x @ weight^T + bias, a
 * residual connection without an add of its own (torch.addmm's `input`); 16 of the omniglot step's
 * dispatches.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor, residual?: Tensor): Tensor<'f32'> {
  return linearWith('linear', x, weight, bias, false, residual);
}

/** gelu(linear(x, weight, bias)) in one kernel (exact erf GELU); the pre-activation is kept for backward. */
export function linearGelu(x: Tensor, weight: Tensor, bias?: Tensor): Tensor<'f32'> {
  return linearWith('linearGelu', x, weight, bias, true);
}

function linearWith(op: string, x: Tensor, w: Tensor, bias: Tensor | undefined, gelu: boolean, residual?: Tensor): Tensor<'f32'> {
  const inputs = bias ? [x, w, bias] : [x, w];
  assertFloat(op, ...inputs, ...(residual ? [residual] : []));
  const label = opLabel(op, inputs);
  const inF = x.shape[x.rank - 1];
  if (x.rank === 0 || w.rank !== 2 || w.shape[1] !== inF) {
    throw new Error(`${op}: input features of x ${fmt(x.shape)} do not match weight ${fmt(w.shape)} ([out, in])`);
  }
  const outF = w.shape[0];
  if (bias && (bias.rank !== 1 || bias.size !== outF)) throw new Error(`${op}: bias ${fmt(bias.shape)} does not match weight ${fmt(w.shape)} (expected [${outF}])`);
  const lead = x.shape.slice(0, -1);
  if (residual && !sameShape(residual.shape, [...lead, outF])) {
    throw new Error(`${op}: residual ${fmt(residual.shape)} does not match the output ${fmt([...lead, outF])}`);
  }
  const x2 = x.rank === 2 ? x : reshape(x, [numel(lead), inF]);
  const r2 = residual && (residual.rank === 2 ? residual : reshape(residual, [numel(lead), outF]));
  const training = isGradEnabled() && [...inputs, ...(residual ? [residual] : [])].some((t) => t.requiresGrad);
  const { out, pre } = mm(x2, w, false, true, label, { bias, gelu: gelu ? (training ? 'out+pre' : 'out') : 'none', residual: r2 });
  const bIndex = bias ? 2 : -1;
  recordOp(
    op,
    [x2, w, ...(bias ? [bias] : []), ...(r2 ? [r2] : [])],
    [out],
    ([g], [sx, sw, spre], needs, into) => {
      // Through the GELU first: d(pre) = gelu'(pre) * dy.
      const d = spre ? geluGrad(spre, g!, `${label} backward`) : g!;
      // The bias gradient (dY's column sums) comes out of the dweight product when both are needed and
      // the product is small enough for that to pay.
      const fusedBias = bias !== undefined && needs[1] && needs[bIndex] && d.shape[0] > 0 && inF > 0 && rowSumsInKernel(d.shape[0] * outF * inF);
      const dbias = fusedBias ? emptyOrInto(into[bIndex], [outF], `${label} backward dbias`) : undefined;
      const grads = [
        needs[0] ? mm(d, sw, false, false, `${label} backward dx`).out : null,
        needs[1] ? mm(d, sx, true, false, `${label} backward dweight`, { into: into[1], rowSums: dbias }).out : null,
      ];
      if (bias) grads.push(needs[bIndex] ? (dbias ?? reduceRaw('sum', d, [0], 1, `${label} backward dbias`, into[bIndex])) : null);
      // The residual's gradient is the output's (after the GELU, which the residual skips).
      if (r2) grads.push(needs[grads.length] ? g! : null);
      return grads;
    },
    pre ? [x2, w, pre] : [x2, w],
  );
  pre?.dispose();
  if (r2 && r2 !== residual) r2.dispose();
  if (x2 === x) return out;
  const y = reshape(out, [...lead, outF]);
  out.dispose();
  x2.dispose();
  return y;
}

function geluGrad(pre: Tensor, g: Tensor<'f32'>, label: string): Tensor<'f32'> {
  const d = empty(pre.shape, 'f32', label);
  launch(binaryKernel('geluGrad', 'same', 'f32', 'f32'), elementwiseUniforms(d.size), [d], [pre, g], grid1d(d.size), label);
  return d;
}
