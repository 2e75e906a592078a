// Row kernels over the last axis, and softmax / log-softmax forward and backward built on them.
// A row of `d` values gets T threads (a power of two, 32..256, chosen from `d` at run time); rows
// shorter than a workgroup share one, so short rows do not leave most threads idle.
import { defineKernel, grid1d, treeReduce, type KernelDecl, type KernelSource, type UniformValues, memoKernel } from './kernel.js';

/** Threads per workgroup of every row kernel. */
export const ROW_WG = 256;

/**
 * log2 of the threads given to one row of length `d`: about 16 values per thread, 32 to 256
 * threads. Fewer threads per row mean fewer tree steps (barriers); lavapipe ran [4096, 384]
 * 3-5x faster with 32 threads per row than with 256.
 */
export function rowLogThreads(d: number): number {
  return Math.min(8, Math.max(5, Math.ceil(Math.log2(Math.max(1, Math.ceil(d / 16))))));
}

/** Uniform block of a row kernel: `p` is the kernel's one float parameter (eps), 0 when unused. */
export function rowUniforms(rows: number, d: number, p = 0, logT = rowLogThreads(d)): UniformValues {
  return { rows, d, logT, p };
}

/** f32 bindings of a row kernel: outputs (bindings 1..), then inputs. */
export function rowBindings(outputs: readonly string[], inputs: readonly string[]): KernelDecl {
  const f32 = (name: string): { name: string; type: string } => ({ name, type: 'f32' });
  return { uniforms: ROW_UNIFORMS, outputs: outputs.map(f32), inputs: inputs.map(f32) };
}

const ROW_UNIFORMS: KernelDecl['uniforms'] = [
  ['rows', 'u32'],
  ['d', 'u32'],
  ['logT', 'u32'],
  ['p', 'f32'],
];

/** Workgroups for `rows` rows of length `d`, as a 2-D grid past 65535. */
export function rowGroups(rows: number, d: number, logT = rowLogThreads(d)): [number, number, number] {
  return grid1d(rows, ROW_WG >> logT);
}

/**
 * A row kernel: `decl` (from `rowBindings`) declares its bindings, `body` runs per thread with `lane` (0..T-1),
 * `T`, `row`, `base` (offset of the row) and `n` (the row length, 0 on padding rows, which must
 * still reach every `rowReduce` call: it holds workgroup barriers). `rowReduce(v)` combines the
 * vec2f `v` of the row's T threads with `combine` and returns the result to all of them.
 */
export function rowKernel(key: string, decl: KernelDecl, combine: string, body: string): KernelSource {
  const code = `
var<workgroup> red: array<vec2f, ${ROW_WG}>;

fn combine(a: vec2f, b: vec2f) -> vec2f { ${combine} }

fn rowReduce(lid: u32, lane: u32, v: vec2f) -> vec2f {
  // One thread per row (logT 0, the software-adapter choice): nothing to combine, no barrier.
  if (u.logT == 0u) { return v; }
  red[lid] = v;
  workgroupBarrier();
  ${treeReduce({ buf: 'red', slot: 'lid', lane: 'lane', lanes: '1u << u.logT', combine: (a, b) => `combine(${a}, ${b})` })}
  let r = red[lid - lane];
  // The next rowReduce overwrites red: everyone must have read this one first.
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let T = 1u << u.logT;
  let lane = lid & (T - 1u);
  let row = (wid.x + wid.y * nwg.x) * (${ROW_WG}u >> u.logT) + (lid >> u.logT);
  let valid = row < u.rows;
  let n = select(0u, u.d, valid);
  let base = select(0u, row * u.d, valid);
${body}
}`;
  return defineKernel(key, decl, code);
}

/** Sum of vec2f partials, the combine of most row kernels. */
export const SUM2 = 'return a + b;';

// Running (max, sum of exp(x - max)) pairs: merging rescales both sums to the larger max.
// -3.4e38 stands for "no value yet": exp of it minus anything finite is 0, never NaN.
const MAX_SUMEXP = 'let m = max(a.x, b.x); return vec2f(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));';

/** y = softmax(x) or log_softmax(x) along rows: one pass for (max, sum of exp), one to write. */
export function softmaxKernel(log: boolean): KernelSource {
  return memoKernel(`softmaxKernel ${JSON.stringify([log])}`, () => buildSoftmaxKernel(log));
}

function buildSoftmaxKernel(log: boolean): KernelSource {
  const [scale, write] = log ? ['let lse = log(r.y);', 'x[base + i] - r.x - lse'] : ['let inv = 1.0 / r.y;', 'exp(x[base + i] - r.x) * inv'];
  return rowKernel(
    `softmax_${log ? 'log' : 'prob'}`,
    rowBindings(['y'], ['x']),
    MAX_SUMEXP,
    `
  var m = -3.4028234663852886e38;
  var s = 0.0;
  for (var i = lane; i < n; i += T) {
    let v = x[base + i];
    if (v > m) { s = s * exp(m - v) + 1.0; m = v; } else { s += exp(v - m); }
  }
  let r = rowReduce(lid, lane, vec2f(m, s));
  ${scale}
  for (var i = lane; i < n; i += T) { y[base + i] = ${write}; }`,
  );
}

/** dx of softmax (y * (g - sum(g y))) or of log_softmax (g - exp(y) * sum(g)), from the output y. */
export function softmaxBackwardKernel(log: boolean): KernelSource {
  return memoKernel(`softmaxBackwardKernel ${JSON.stringify([log])}`, () => buildSoftmaxBackwardKernel(log));
}

function buildSoftmaxBackwardKernel(log: boolean): KernelSource {
  return rowKernel(
    `softmax_backward_${log ? 'log' : 'prob'}`,
    rowBindings(['dx'], ['g', 'y']),
    SUM2,
    `
  var acc = 0.0;
  for (var i = lane; i < n; i += T) { acc += ${log ? 'g[base + i]' : 'g[base + i] * y[base + i]'}; }
  let s = rowReduce(lid, lane, vec2f(acc, 0.0)).x;
  for (var i = lane; i < n; i += T) {
    let j = base + i;
    dx[j] = ${log ? 'g[j] - exp(y[j]) * s' : 'y[j] * (g[j] - s)'};
  }`,
  );
}
