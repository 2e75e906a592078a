// Reductions over the middle axis of a tensor viewed as [A, R, C] -> [A, C]. Any set of adjacent axes
// maps to this view; the op layer permutes first when the reduced axes are not adjacent.
import { defineKernel, spillIndex, treeReduce, type KernelDecl, type KernelSource, memoKernel } from './kernel.js';

export type ReduceOp = 'sum' | 'max' | 'min';

const INIT: Record<ReduceOp, string> = { sum: '0.0', max: '-3.4028234663852886e38', min: '3.4028234663852886e38' };
const COMBINE: Record<ReduceOp, (a: string, b: string) => string> = {
  sum: (a, b) => `${a} + ${b}`,
  max: (a, b) => `max(${a}, ${b})`,
  min: (a, b) => `min(${a}, ${b})`,
};

/** Threads along C and lanes along R of the strided variant. */
export const REDUCE_TILE_C = 32;
export const REDUCE_LANES = 8;
/** Threads of the row variant (C = 1): one workgroup per row. */
export const REDUCE_ROW_WG = 256;

const REDUCE: KernelDecl = {
  uniforms: [
    ['A', 'u32'],
    ['R', 'u32'],
    ['C', 'u32'],
    ['scale', 'f32'],
  ],
  outputs: [{ name: 'out', type: 'f32' }],
  inputs: [{ name: 'x', type: 'f32' }],
};

/** C = 1: each workgroup reduces one contiguous row of R values with a tree in workgroup memory. */
export function reduceRowsKernel(op: ReduceOp): KernelSource {
  return memoKernel(`reduceRowsKernel ${JSON.stringify([op])}`, () => buildReduceRowsKernel(op));
}

function buildReduceRowsKernel(op: ReduceOp): KernelSource {
  const c = COMBINE[op];
  const code = `
var<workgroup> part: array<f32, ${REDUCE_ROW_WG}>;
@compute @workgroup_size(${REDUCE_ROW_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3u) {
  let a = wid.x + wid.y * nwg.x;
  var acc = ${INIT[op]};
  if (a < u.A) {
    let base = a * u.R;
    for (var r = lid; r < u.R; r += ${REDUCE_ROW_WG}u) { acc = ${c('acc', 'x[base + r]')}; }
  }
  part[lid] = acc;
  workgroupBarrier();
  ${treeReduce({ buf: 'part', slot: 'lid', lane: 'lid', lanes: REDUCE_ROW_WG, combine: c })}
  if (lid == 0u && a < u.A) { out[a] = part[0] * u.scale; }
}`;
  return defineKernel(`reduce_rows_${op}`, REDUCE, code);
}

/** C > 1: a workgroup covers 32 columns of one `a`, with 8 lanes splitting R. */
export function reduceColsKernel(op: ReduceOp): KernelSource {
  return memoKernel(`reduceColsKernel ${JSON.stringify([op])}`, () => buildReduceColsKernel(op));
}

function buildReduceColsKernel(op: ReduceOp): KernelSource {
  const c = COMBINE[op];
  const code = `
var<workgroup> part: array<f32, ${REDUCE_TILE_C * REDUCE_LANES}>;
@compute @workgroup_size(${REDUCE_TILE_C}, ${REDUCE_LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let col = wid.x * ${REDUCE_TILE_C}u + lid.x;
  let a = ${spillIndex('wid.y', 'wid.z')};
  var acc = ${INIT[op]};
  if (col < u.C && a < u.A) {
    let base = a * u.R * u.C + col;
    for (var r = lid.y; r < u.R; r += ${REDUCE_LANES}u) { acc = ${c('acc', 'x[base + r * u.C]')}; }
  }
  let slot = lid.y * ${REDUCE_TILE_C}u + lid.x;
  part[slot] = acc;
  workgroupBarrier();
  ${treeReduce({ buf: 'part', slot: 'slot', lane: 'lid.y', lanes: REDUCE_LANES, stride: REDUCE_TILE_C, combine: c })}
  if (lid.y == 0u && col < u.C && a < u.A) { out[a * u.C + col] = part[lid.x] * u.scale; }
}`;
  return defineKernel(`reduce_cols_${op}`, REDUCE, code);
}
