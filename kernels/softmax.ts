// Row kernels over the last axis, and softmax / log-softmax forward and backward built on them.
// A row of `d` values gets T threads (a power of two, 32..256, chosen from `d` at run time); rows
// shorter than a workgroup share one, so short rows do not leave most threads idle. The serial
// variants give a row one thread (software adapters, engine/ops/softmax.ts says when).
import { defineKernel, grid1d, treeReduce, type KernelDecl, type KernelSource, type UniformValues, memoKernel } from './kernel.js';

/** Threads per workgroup of the row kernels with T threads a row. */
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

/**
 * Threads (rows) per workgroup of the serial variants. With 256 the omniglot preset's 320 rows made two
 * workgroups, 256 rows on one core and 64 on the other; lavapipe's cost per workgroup is ~70 ns. Ten
 * layerNorm forwards on lavapipe, GPU-side medians, 256 / 8 / 16 / 32 / 64 rows a group: [320, 64]
 * 1.4-1.9 / 1.5 / 0.85 / 0.9-1.4 / 1.25 ms, [2080, 192] 12.9-13.3 / 9.4 / 9.2 / 9.2 / 9.0 ms (the
 * serial variant also drops the tree's workgroup memory and barriers; bench/NOTES.md).
 */
export const SERIAL_ROW_WG = 32;

/** Workgroups for `rows` rows of length `d`, as a 2-D grid past 65535 (logT 0: the serial variants). */
export function rowGroups(rows: number, d: number, logT = rowLogThreads(d)): [number, number, number] {
  return grid1d(rows, logT === 0 ? SERIAL_ROW_WG : ROW_WG >> logT);
}

/**
 * A row kernel: `decl` (from `rowBindings`) declares its bindings, `body` runs per thread with `lane` (0..T-1),
 * `T`, `row`, `base` (offset of the row) and `n` (the row length, 0 on padding rows, which must
 * still reach every `rowReduce` call: it holds workgroup barriers). `rowReduce(v)` combines the
 * vec2f `v` of the row's T threads with `combine` and returns the result to all of them.
 */
export function rowKernel(key: string, decl: KernelDecl, combine: string, body: string, serial = false): KernelSource {
  if (serial) return serialRowKernel(key, decl, body);
  const code = `
var<workgroup> red: array<vec2f, ${ROW_WG}>;

fn combine(a: vec2f, b: vec2f) -> vec2f { ${combine} }

fn rowReduce(lid: u32, lane: u32, v: vec2f) -> vec2f {
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

/**
 * The one-thread-per-row variant of a row kernel (logT 0): SERIAL_ROW_WG rows per workgroup, and a
 * rowReduce with nothing to combine (no workgroup memory, no barriers). Key suffix `_serial`.
 */
function serialRowKernel(key: string, decl: KernelDecl, body: string): KernelSource {
  const code = `
fn rowReduce(lid: u32, lane: u32, v: vec2f) -> vec2f { return v; }

@compute @workgroup_size(${SERIAL_ROW_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let T = 1u;
  let lane = 0u;
  let row = (wid.x + wid.y * nwg.x) * ${SERIAL_ROW_WG}u + lid;
  let valid = row < u.rows;
  let n = select(0u, u.d, valid);
  let base = select(0u, row * u.d, valid);
${body}
}`;
  return defineKernel(`${key}_serial`, decl, code);
}

/** Sum of vec2f partials, the combine of most row kernels. */
export const SUM2 = 'return a + b;';

// Running (max, sum of exp(x - max)) pairs: merging rescales both sums to the larger max.
// -3.4e38 stands for "no value yet": exp of it minus anything finite is 0, never NaN.
const MAX_SUMEXP = 'let m = max(a.x, b.x); return vec2f(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));';

/** y = softmax(x) or log_softmax(x) along rows: one pass for (max, sum of exp), one to write. */
export function softmaxKernel(log: boolean, serial = false): KernelSource {
  return memoKernel(`softmaxKernel ${JSON.stringify([log, serial])}`, () => buildSoftmaxKernel(log, serial));
}

function buildSoftmaxKernel(log: boolean, serial: boolean): KernelSource {
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
    serial,
  );
}

/** dx of softmax (y * (g - sum(g y))) or of log_softmax (g - exp(y) * sum(g)), from the output y. */
export function softmaxBackwardKernel(log: boolean, serial = false): KernelSource {
  return memoKernel(`softmaxBackwardKernel ${JSON.stringify([log, serial])}`, () => buildSoftmaxBackwardKernel(log, serial));
}

function buildSoftmaxBackwardKernel(log: boolean, serial: boolean): KernelSource {
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
    serial,
  );
}
