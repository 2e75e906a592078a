// Data movement: one strided copy kernel serves permute, slice, concat, expand and their backwards;
// gather/scatter along an axis serve index_select and its backward.
import { defineKernel, entry1d, linearIndex, type DType, type KernelDecl, type KernelSource, type UniformValues, memoKernel } from './kernel.js';

/**
 * For each index c of a view of shape `shape` (rank `rank`):
 * out[outOffset + sum c_k*os_k] = x[inOffset + sum c_k*is_k].
 */
export function stridedCopyKernel(rank: number, dtype: DType, fixedShape?: readonly number[]): KernelSource {
  return memoKernel(`stridedCopyKernel ${JSON.stringify([rank, dtype, fixedShape])}`, () => buildStridedCopyKernel(rank, dtype, fixedShape));
}

/**
 * Elements of the innermost axis one thread copies: with the shape compiled in and that axis 4 to 64 long,
 * the whole axis (the index arithmetic, a division and a remainder per axis, then runs once per row
 * instead of once per element), else 1. The omniglot preset's patchify, [64, 3, 2, 14, 2, 14] permuted:
 * 0.79 -> 0.39 ms GPU-side on lavapipe, medians (bench/NOTES.md). Launch `grid1d(n / run)`.
 */
export function stridedCopyRun(fixedShape?: readonly number[]): number {
  const last = fixedShape?.[fixedShape.length - 1] ?? 1;
  return last >= 4 && last <= 64 ? last : 1;
}

function buildStridedCopyKernel(rank: number, dtype: DType, fixedShape?: readonly number[]): KernelSource {
  const run = stridedCopyRun(fixedShape);
  const lines: string[] = [];
  for (let d = rank - (run > 1 ? 2 : 1); d >= 0; d--) {
    const v = `[${d >> 2}][${d & 3}]`;
    // A shape compiled in turns each index division into a multiply (a division by a run-time value
    // is a per-lane loop of scalar divides on lavapipe); axes of size 1 drop out.
    const size = fixedShape ? `${fixedShape[d]}u` : `u.shape${v}`;
    if (fixedShape?.[d] === 1) continue;
    lines.push(`{ let c = rem % ${size}; rem = rem / ${size}; oi += c * u.is${v}; oo += c * u.os${v}; }`);
  }
  const decl: KernelDecl = {
    uniforms: [
      ['n', 'u32'],
      ['inOffset', 'u32'],
      ['outOffset', 'u32'],
      ['rank', 'u32'],
      ['shape', 'array<vec4u, 2>'],
      ['is', 'array<vec4u, 2>'],
      ['os', 'array<vec4u, 2>'],
    ],
    outputs: [{ name: 'out', type: dtype }],
    inputs: [{ name: 'x', type: dtype }],
  };
  const l = `[${(rank - 1) >> 2}][${(rank - 1) & 3}]`;
  const copy = run > 1 ? `for (var j = 0u; j < ${run}u; j++) { out[oo + j * u.os${l}] = x[oi + j * u.is${l}]; }` : 'out[oo] = x[oi];';
  const code = `
${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n${run > 1 ? ` / ${run}u` : ''}) { return; }
  var rem = i;
  var oi = u.inOffset;
  var oo = u.outOffset;
  ${lines.join('\n  ')}
  ${copy}
}`;
  return defineKernel(`strided_copy_${rank}_${dtype}${fixedShape ? `_${fixedShape.join('x')}` : ''}${run > 1 ? `_run${run}` : ''}`, decl, code);
}

export function stridedCopyUniforms(n: number, inOffset: number, outOffset: number, shape: readonly number[], is: readonly number[], os: readonly number[]): UniformValues {
  return { n, inOffset, outOffset, rank: shape.length, shape, is, os };
}

/** x viewed as [A, N, C] indexed by idx [M] (gather and its scatter-add backward). */
function indexDecl(dtype: DType, x: string): KernelDecl {
  return {
    uniforms: [
      ['n', 'u32'],
      ['N', 'u32'],
      ['M', 'u32'],
      ['C', 'u32'],
    ],
    outputs: [{ name: 'out', type: dtype }],
    inputs: [
      { name: x, type: dtype },
      { name: 'idx', type: 'i32' },
    ],
  };
}

/**
 * index_select on x viewed as [A, N, C] with indices [M]: out[a, m, c] = x[a, idx[m], c].
 * Out-of-range indices write NaN rather than reading out of bounds (the op layer checks on request).
 */
export function gatherKernel(dtype: DType): KernelSource {
  return memoKernel(`gatherKernel ${JSON.stringify([dtype])}`, () => buildGatherKernel(dtype));
}

function buildGatherKernel(dtype: DType): KernelSource {
  const code = `
${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n) { return; }
  let c = i % u.C;
  let m = (i / u.C) % u.M;
  let a = i / (u.C * u.M);
  let j = idx[m];
  if (j < 0 || u32(j) >= u.N) { out[i] = ${dtype === 'f32' ? 'bitcast<f32>(0x7fc00000u | (i & 0u))' : `${dtype}(0)`}; return; }
  out[i] = x[(a * u.N + u32(j)) * u.C + c];
}`;
  return defineKernel(`gather_${dtype}`, indexDecl(dtype, 'x'), code);
}

/**
 * Backward of index_select: dx[a, n, c] = sum over m with idx[m] == n of g[a, m, c]. Each output
 * element scans the index list, so the sum order is fixed and results are deterministic
 * (float atomics would make training runs irreproducible).
 */
export function scatterAddKernel(): KernelSource {
  return memoKernel(`scatterAddKernel ${JSON.stringify([])}`, () => buildScatterAddKernel());
}

function buildScatterAddKernel(): KernelSource {
  const code = `
${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n) { return; }
  let c = i % u.C;
  let row = i32((i / u.C) % u.N);
  let a = i / (u.C * u.N);
  var acc = 0.0;
  for (var m = 0u; m < u.M; m++) {
    if (idx[m] == row) { acc += g[(a * u.M + m) * u.C + c]; }
  }
  out[i] = acc;
}`;
  return defineKernel('scatter_add', indexDecl('f32', 'g'), code);
}
