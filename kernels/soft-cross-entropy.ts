// Softmax cross-entropy with soft targets (the DINO/iBOT/SMKD distillation loss) and the centre EMA.
// Teacher logits y = (t - center) / teacherTemp, student logits x = s / studentTemp,
// H(P, S) = -sum_c softmax(y)_c * log_softmax(x)_c. Rows loop over C inside one workgroup, so any C works.
import { defineKernel, entry1d, linearIndex, spillGroups, treeReduce, type BindingDecl, type KernelDecl, type KernelSource, memoKernel } from './kernel.js';

/** Threads of the one-workgroup-per-row kernels. */
export const ROW_WG = 256;
/** The pair kernel's tile: 64 student rows x 64 classes per workgroup, teacher rows in chunks of 16. */
export const PAIR_TILE = 64;
const PAIR_CHUNK = 16;
/** Columns per workgroup of the centre update (and lanes splitting its rows). */
export const CENTER_COLS = 32;
const CENTER_LANES = 8;

const NEG_MAX = '-3.4028234663852886e38';

/** Static choices of the row-wise loss: centre subtracted, teacher row picked by an index, per-row weight. */
export interface RowsVariant {
  centered: boolean;
  indexed: boolean;
  weighted: boolean;
}

/** Launch grid of a one-workgroup-per-row kernel (rows beyond 65535 spill into y). */
export function rowGrid(rows: number): [number, number, number] {
  return spillGroups(rows);
}

/** A declaration whose bindings are f32 arrays named `outputs` and `inputs`. */
function decl(uniforms: KernelDecl['uniforms'], outputs: readonly string[], inputs: readonly string[]): KernelDecl {
  const f32 = (name: string): BindingDecl => ({ name, type: 'f32' });
  return { uniforms, outputs: outputs.map(f32), inputs: inputs.map(f32) };
}

/** The row-wise kernels' declaration: `uniforms` then the temperatures; the optional inputs follow the fixed ones, in the op's input order. */
function rowsDecl(v: RowsVariant, uniforms: KernelDecl['uniforms'], outputs: readonly string[], inputs: readonly string[]): KernelDecl {
  const d = decl([...uniforms, ['studentTemp', 'f32'], ['teacherTemp', 'f32']], outputs, inputs);
  const optional: BindingDecl[] = [];
  if (v.centered) optional.push({ name: 'center', type: 'f32' });
  if (v.indexed) optional.push({ name: 'teacherIndex', type: 'i32' });
  if (v.weighted) optional.push({ name: 'weight', type: 'f32' });
  return { ...d, inputs: [...d.inputs, ...optional] };
}

function variantKey(v: RowsVariant): string {
  return `${v.centered ? 'c' : ''}${v.indexed ? 'i' : ''}${v.weighted ? 'w' : ''}`;
}

/** WGSL helpers shared by both row-wise kernels: the teacher row of student row `row`, a teacher logit. */
function teacherHelpers(v: RowsVariant): string {
  // An out-of-range index is clamped: reading another row beats reading out of bounds.
  const trow = v.indexed ? 'u32(clamp(teacherIndex[row], 0, i32(u.Nt) - 1))' : 'row';
  const centre = v.centered ? ' - center[c]' : '';
  return `
fn teacherRow(row: u32) -> u32 { return ${trow}; }
fn teacherLogit(base: u32, c: u32) -> f32 { return (t[base + c]${centre}) / u.teacherTemp; }`;
}

/**
 * Reduction of `red[0..ROW_WG)` with `combine` into red[0]: 16 threads fold 16 entries each
 * (stride 16, conflict-free), then one folds those. Three barriers instead of a tree's nine, which
 * a software driver (lavapipe) pays dearly for; the fixed order keeps results deterministic.
 */
function workgroupReduce(combine: (a: string, b: string) => string): string {
  return `workgroupBarrier();
  if (lid < 16u) {
    var a = red[lid];
    for (var k = 1u; k < 16u; k++) { a = ${combine('a', `red[lid + 16u * k]`)}; }
    red[lid] = a;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var a = red[0];
    for (var k = 1u; k < 16u; k++) { a = ${combine('a', `red[k]`)}; }
    red[0] = a;
  }
  workgroupBarrier();`;
}

/** The row-wise forward's declaration (both forms): loss[N], stats[3, N] from s, t and the variant's inputs. */
function rowsForwardDecl(v: RowsVariant): KernelDecl {
  return rowsDecl(
    v,
    [
      ['N', 'u32'],
      ['C', 'u32'],
      ['Nt', 'u32'],
    ],
    ['loss', 'stats'],
    ['s', 't'],
  );
}

/**
 * WGSL writing row `row`'s loss and stats from the maxima `my`, `mx` (teacher, student) and the sums `sum`
 * = (sum e_y, sum e_x, sum e_y (mx - x)), expressions of the caller's.
 */
function rowsForwardStore(v: RowsVariant, my: string, mx: string, sum: string): string {
  return `let h = log(${sum}.y) + ${sum}.z / ${sum}.x;
    loss[row] = h${v.weighted ? ' * weight[row]' : ''};
    stats[row] = ${my} + log(${sum}.x);
    stats[u.N + row] = ${mx} + log(${sum}.y);
    stats[2u * u.N + row] = h;`;
}

/**
 * Row-wise forward, one workgroup per student row. Outputs: loss[N] (= H * weight) and
 * stats[3, N] = (teacher log-sum-exp, student log-sum-exp, unweighted H) for the backward.
 * Pass 1 finds both maxima; pass 2 sums exp(y - my), exp(x - mx) and e_y * (mx - x), all terms
 * non-negative, so H = log(sum exp(x - mx)) + sum e_y (mx - x) / sum e_y has no cancellation
 * even at temperature 0.01 with large logits.
 */
export function softCrossEntropyRowsKernel(v: RowsVariant): KernelSource {
  return memoKernel(`softCrossEntropyRowsKernel ${JSON.stringify([v])}`, () => buildSoftCrossEntropyRowsKernel(v));
}

function buildSoftCrossEntropyRowsKernel(v: RowsVariant): KernelSource {
  const code = `
var<workgroup> red: array<vec4f, ${ROW_WG}>;
${teacherHelpers(v)}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.N) { return; }
  let tb = teacherRow(row) * u.C;
  let sb = row * u.C;
  var my = ${NEG_MAX};
  var mx = ${NEG_MAX};
  for (var c = lid; c < u.C; c += ${ROW_WG}u) {
    my = max(my, teacherLogit(tb, c));
    mx = max(mx, s[sb + c] / u.studentTemp);
  }
  red[lid] = vec4f(my, mx, 0.0, 0.0);
  ${workgroupReduce((a, b) => `max(${a}, ${b})`)}
  let m = red[0].xy;
  workgroupBarrier();
  var acc = vec3f(0.0);
  for (var c = lid; c < u.C; c += ${ROW_WG}u) {
    let e = exp(teacherLogit(tb, c) - m.x);
    let x = s[sb + c] / u.studentTemp;
    acc += vec3f(e, exp(x - m.y), e * (m.y - x));
  }
  red[lid] = vec4f(acc, 0.0);
  ${workgroupReduce((a, b) => `${a} + ${b}`)}
  if (lid == 0u) {
    let r = red[0];
    ${rowsForwardStore(v, 'm.x', 'm.y', 'r')}
  }
}`;
  return defineKernel(`sce_rows_${variantKey(v)}`, rowsForwardDecl(v), code);
}

/**
 * Row-wise backward, one thread per element:
 * dL/ds[i, c] = g[i] * weight[i] / studentTemp * (softmax(x_i)_c - softmax(y_i)_c), from the saved stats.
 */
export function softCrossEntropyRowsGradKernel(v: RowsVariant): KernelSource {
  return memoKernel(`softCrossEntropyRowsGradKernel ${JSON.stringify([v])}`, () => buildSoftCrossEntropyRowsGradKernel(v));
}

function buildSoftCrossEntropyRowsGradKernel(v: RowsVariant): KernelSource {
  const code = `
${teacherHelpers(v)}
${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n) { return; }
  let row = i / u.C;
  let c = i - row * u.C;
  let p = exp(teacherLogit(teacherRow(row) * u.C, c) - stats[row]);
  let q = exp(s[i] / u.studentTemp - stats[u.N + row]);
  grad[i] = g[row]${v.weighted ? ' * weight[row]' : ''} / u.studentTemp * (q - p);
}`;
  return defineKernel(`sce_rows_grad_${variantKey(v)}`, rowsGradDecl(v), code);
}

/** The row-wise backward's declaration (both forms): grad [N, C] from g, stats, s, t and the optional inputs. */
function rowsGradDecl(v: RowsVariant): KernelDecl {
  return rowsDecl(
    v,
    [
      ['n', 'u32'],
      ['N', 'u32'],
      ['C', 'u32'],
      ['Nt', 'u32'],
    ],
    ['grad'],
    ['g', 'stats', 's', 't'],
  );
}

/** The tempered softmax's declaration (both forms): out [R, C] from x (and the centre). */
function temperedDecl(centered: boolean): KernelDecl {
  return decl(
    [
      ['R', 'u32'],
      ['C', 'u32'],
      ['temp', 'f32'],
    ],
    ['out'],
    centered ? ['x', 'center'] : ['x'],
  );
}

/**
 * out[r] = softmax(y_r) or log_softmax(y_r) with y = (x - center) / temp, one workgroup per row
 * (three passes: max, sum of exponentials, write).
 */
export function temperedSoftmaxKernel(log: boolean, centered: boolean): KernelSource {
  return memoKernel(`temperedSoftmaxKernel ${JSON.stringify([log, centered])}`, () => buildTemperedSoftmaxKernel(log, centered));
}

function buildTemperedSoftmaxKernel(log: boolean, centered: boolean): KernelSource {
  const logit = `(x[base + c]${centered ? ' - center[c]' : ''}) / u.temp`;
  const code = `
var<workgroup> red: array<f32, ${ROW_WG}>;
fn logit(base: u32, c: u32) -> f32 { return ${logit}; }
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.R) { return; }
  let base = row * u.C;
  var m = ${NEG_MAX};
  for (var c = lid; c < u.C; c += ${ROW_WG}u) { m = max(m, logit(base, c)); }
  red[lid] = m;
  ${workgroupReduce((a, b) => `max(${a}, ${b})`)}
  let mx = red[0];
  workgroupBarrier();
  var acc = 0.0;
  for (var c = lid; c < u.C; c += ${ROW_WG}u) { acc += exp(logit(base, c) - mx); }
  red[lid] = acc;
  ${workgroupReduce((a, b) => `${a} + ${b}`)}
  let lse = mx + log(red[0]);
  for (var c = lid; c < u.C; c += ${ROW_WG}u) { out[base + c] = ${log ? 'logit(base, c) - lse' : 'exp(logit(base, c) - lse)'}; }
}`;
  return defineKernel(`tempered_${log ? 'log_' : ''}softmax${centered ? '_c' : ''}`, temperedDecl(centered), code);
}

/** The pair kernels' declaration: out from mask, probs, logProbs (and g for 'grad'); the serial forms also take `rows` = B * Ns. */
function pairsDecl(epilogue: 'loss' | 'grad', serial: boolean): KernelDecl {
  const uniforms: KernelDecl['uniforms'] = [
    ['Nt', 'u32'],
    ['Ns', 'u32'],
    ['C', 'u32'],
    ['studentTemp', 'f32'],
  ];
  const inputs = epilogue === 'grad' ? ['mask', 'probs', 'logProbs', 'g'] : ['mask', 'probs', 'logProbs'];
  return decl(serial ? [['rows', 'u32'], ...uniforms] : uniforms, ['out'], inputs);
}

/**
 * The masked pair reduction of each group b (grid z), Q = M^T P computed tile by tile in registers
 * (M [B, Nt, Ns], P [B, Nt, C]), never written to memory. Each 256-thread workgroup owns 64 student
 * rows j x 64 classes c (4 x 4 consecutive ones per thread, read from workgroup memory as vec4s)
 * and walks the teacher rows.
 * - 'loss': writes one partial per workgroup, -sum_{j,c in tile} Q[j, c] * logS[j, c]
 *   (partials[(b * tilesJ + tileJ) * tilesC + tileC]); the op sums them per group.
 * - 'grad': writes dL/ds[b, j, c] = g[b] / studentTemp * (m_j * exp(logS[b, j, c]) - Q[j, c]),
 *   m_j = sum_i M[b, i, j] accumulated from the same mask tiles.
 */
export function maskedPairKernel(epilogue: 'loss' | 'grad'): KernelSource {
  return memoKernel(`maskedPairKernel ${JSON.stringify([epilogue])}`, () => buildMaskedPairKernel(epilogue));
}

function buildMaskedPairKernel(epilogue: 'loss' | 'grad'): KernelSource {
  const T = PAIR_TILE;
  const K = PAIR_CHUNK;
  const loads = (T * K) / ROW_WG;
  const lanes = [0, 1, 2, 3];
  const loss = `
  var part = 0.0;
${lanes
  .map(
    (a) => `  if (j0 + ty * 4u + ${a}u < u.Ns) {
${lanes.map((b) => `    if (c0 + tx * 4u + ${b}u < u.C) { part += acc${a}[${b}] * logProbs[sBase + (j0 + ty * 4u + ${a}u) * u.C + c0 + tx * 4u + ${b}u]; }`).join('\n')}
  }`,
  )
  .join('\n')}
  red[lid] = part;
  ${workgroupReduce((a, b) => `${a} + ${b}`)}
  if (lid == 0u) { out[(wid.z * nwg.y + wid.y) * nwg.x + wid.x] = -red[0]; }`;
  const grad = `
  let scale = g[wid.z] / u.studentTemp;
${lanes
  .map(
    (a) => `  if (j0 + ty * 4u + ${a}u < u.Ns) {
${lanes
  .map(
    (b) => `    if (c0 + tx * 4u + ${b}u < u.C) {
      let o = sBase + (j0 + ty * 4u + ${a}u) * u.C + c0 + tx * 4u + ${b}u;
      out[o] = scale * (mj[${a}] * exp(logProbs[o]) - acc${a}[${b}]);
    }`,
  )
  .join('\n')}
  }`,
  )
  .join('\n')}`;
  const code = `
var<workgroup> ms: array<vec4f, ${(T * K) / 4}>;
var<workgroup> ps: array<vec4f, ${(T * K) / 4}>;
var<workgroup> red: array<f32, ${ROW_WG}>;
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3u) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let c0 = wid.x * ${T}u;
  let j0 = wid.y * ${T}u;
  let mBase = wid.z * u.Nt * u.Ns;
  let pBase = wid.z * u.Nt * u.C;
  let sBase = wid.z * u.Ns * u.C;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  var mj = vec4f(0.0);
  for (var i0 = 0u; i0 < u.Nt; i0 += ${K}u) {
    for (var q = 0u; q < ${loads}u; q++) {
      let e = lid + ${ROW_WG}u * q;
      let i = i0 + e / ${T}u;
      let o = e % ${T}u;
      var mv = 0.0;
      if (i < u.Nt && j0 + o < u.Ns) { mv = mask[mBase + i * u.Ns + j0 + o]; }
      ms[e / 4u][e % 4u] = mv;
      var pv = 0.0;
      if (i < u.Nt && c0 + o < u.C) { pv = probs[pBase + i * u.C + c0 + o]; }
      ps[e / 4u][e % 4u] = pv;
    }
    workgroupBarrier();
    for (var k = 0u; k < ${K}u; k++) {
      let a = ms[k * 16u + ty];
      let b = ps[k * 16u + tx];
      acc0 += a.x * b;
      acc1 += a.y * b;
      acc2 += a.z * b;
      acc3 += a.w * b;
      mj += a;
    }
    workgroupBarrier();
  }
${epilogue === 'loss' ? loss : grad}
}`;
  return defineKernel(`sce_pairs_${epilogue}`, pairsDecl(epilogue, false), code);
}

/**
 * In-place centre EMA over t viewed as [R, C]: center = m * center + (1 - m) * mean_r t[r, :].
 * A workgroup covers 32 columns with 8 lanes splitting the rows (coalesced along C).
 */
export function centerUpdateKernel(): KernelSource {
  return memoKernel(`centerUpdateKernel ${JSON.stringify([])}`, () => buildCenterUpdateKernel());
}

function buildCenterUpdateKernel(): KernelSource {
  const code = `
var<workgroup> part: array<f32, ${CENTER_COLS * CENTER_LANES}>;
@compute @workgroup_size(${CENTER_COLS}, ${CENTER_LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let col = wid.x * ${CENTER_COLS}u + lid.x;
  var acc = 0.0;
  if (col < u.C) {
    for (var r = lid.y; r < u.R; r += ${CENTER_LANES}u) { acc += t[r * u.C + col]; }
  }
  let slot = lid.y * ${CENTER_COLS}u + lid.x;
  part[slot] = acc;
  workgroupBarrier();
  ${treeReduce({ buf: 'part', slot: 'slot', lane: 'lid.y', lanes: CENTER_LANES, stride: CENTER_COLS, combine: (a, b) => `${a} + ${b}` })}
  if (lid.y == 0u && col < u.C) {
    center[col] = center[col] * u.momentum + (part[lid.x] / f32(u.R)) * (1.0 - u.momentum);
  }
}`;
  return defineKernel(
    'center_update',
    decl(
      [
        ['R', 'u32'],
        ['C', 'u32'],
        ['momentum', 'f32'],
      ],
      ['center'],
      ['t'],
    ),
    code,
  );
}

// Serial forms for software adapters (lavapipe): one thread walks a whole row (or a (b, j) pair row)
// alone, no workgroup memory and no barriers. There a workgroup-memory load is a loop over the SIMD
// lanes and a barrier a coroutine switch, so the 256-thread reductions above spent most of their time
// on the reduction itself at the preset sizes (C = 256), and their coroutine code cost LLVM 1.3-2.3 s
// per kernel at the first dispatch (bench/NOTES.md, "Cold start"). The ops pick these for rows up to
// SERIAL_MAX_C classes (a float32 sum of that many terms, as the serial row kernels of softmax.ts).

/** Threads per workgroup of the serial kernels. */
export const SERIAL_WG = 32;
/** Classes per workgroup of the serial pair gradient (one workgroup per student row at C = 256: lavapipe pays per workgroup). */
export const PAIR_GRAD_WG = 256;

/** The serial row kernels' start: a thread per student row `row`, its teacher row at `tb` and its own at `sb`. */
function serialRowsHead(v: RowsVariant): string {
  return `
${teacherHelpers(v)}
${entry1d(SERIAL_WG)} {
  let row = ${linearIndex(SERIAL_WG)};
  if (row >= u.N) { return; }
  let tb = teacherRow(row) * u.C;
  let sb = row * u.C;`;
}

/** softCrossEntropyRowsKernel's outputs, one thread per row (launch `grid1d(N, SERIAL_WG)`). */
export function softCrossEntropyRowsSerialKernel(v: RowsVariant): KernelSource {
  return memoKernel(`softCrossEntropyRowsSerialKernel ${JSON.stringify([v])}`, () => {
    const code = `${serialRowsHead(v)}
  var my = ${NEG_MAX};
  var mx = ${NEG_MAX};
  for (var c = 0u; c < u.C; c++) {
    my = max(my, teacherLogit(tb, c));
    mx = max(mx, s[sb + c] / u.studentTemp);
  }
  var acc = vec3f(0.0);
  for (var c = 0u; c < u.C; c++) {
    let e = exp(teacherLogit(tb, c) - my);
    let x = s[sb + c] / u.studentTemp;
    acc += vec3f(e, exp(x - mx), e * (mx - x));
  }
  ${rowsForwardStore(v, 'my', 'mx', 'acc')}
}`;
    return defineKernel(`sce_rows_serial_${variantKey(v)}`, rowsForwardDecl(v), code);
  });
}

/**
 * softCrossEntropyRowsGradKernel's output, one thread per row (launch `grid1d(N, SERIAL_WG)`): the row's
 * statistics, upstream gradient and weight read once instead of per element, and no division of the
 * element index by C. ViT-Tiny-like bench step, [2080, 1024]: 47.7 ms as one thread per element
 * (bench/NOTES.md). The same arithmetic in the same order, so the same values.
 */
export function softCrossEntropyRowsGradSerialKernel(v: RowsVariant): KernelSource {
  return memoKernel(`softCrossEntropyRowsGradSerialKernel ${JSON.stringify([v])}`, () => {
    const code = `${serialRowsHead(v)}
  let lt = stats[row];
  let ls = stats[u.N + row];
  let k = g[row]${v.weighted ? ' * weight[row]' : ''} / u.studentTemp;
  for (var c = 0u; c < u.C; c++) {
    let p = exp(teacherLogit(tb, c) - lt);
    let q = exp(s[sb + c] / u.studentTemp - ls);
    grad[sb + c] = k * (q - p);
  }
}`;
    return defineKernel(`sce_rows_grad_serial_${variantKey(v)}`, rowsGradDecl(v), code);
  });
}

/** temperedSoftmaxKernel's output, one thread per row (launch `grid1d(R, SERIAL_WG)`). */
export function temperedSoftmaxSerialKernel(log: boolean, centered: boolean): KernelSource {
  return memoKernel(`temperedSoftmaxSerialKernel ${JSON.stringify([log, centered])}`, () => {
    const logit = `(x[base + c]${centered ? ' - center[c]' : ''}) / u.temp`;
    const code = `
fn logit(base: u32, c: u32) -> f32 { return ${logit}; }
${entry1d(SERIAL_WG)} {
  let row = ${linearIndex(SERIAL_WG)};
  if (row >= u.R) { return; }
  let base = row * u.C;
  var m = ${NEG_MAX};
  for (var c = 0u; c < u.C; c++) { m = max(m, logit(base, c)); }
  var acc = 0.0;
  for (var c = 0u; c < u.C; c++) { acc += exp(logit(base, c) - m); }
  let lse = m + log(acc);
  for (var c = 0u; c < u.C; c++) { out[base + c] = ${log ? 'logit(base, c) - lse' : 'exp(logit(base, c) - lse)'}; }
}`;
    return defineKernel(`tempered_${log ? 'log_' : ''}softmax${centered ? '_c' : ''}_serial`, temperedDecl(centered), code);
  });
}

/**
 * maskedPairKernel without tiles, for small Nt x C:
 * - 'loss': one thread per student row (b, j) (launch `grid1d(B * Ns, SERIAL_WG)`), writing
 *   partials[b * Ns + j] = -sum_i M[b, i, j] sum_c P[b, i, c] logS[b, j, c] (pairs with M = 0 skipped);
 * - 'grad': one thread per element, workgroups of PAIR_GRAD_WG classes along x and one student row (b, j)
 *   per y (launch `[ceil(C / PAIR_GRAD_WG), B * Ns, 1]`, so b and j are workgroup-uniform):
 *   dL/ds[b, j, c] = g[b] / studentTemp * (m_j exp(logS[b, j, c]) - sum_i M[b, i, j] P[b, i, c]).
 */
export function maskedPairSerialKernel(epilogue: 'loss' | 'grad'): KernelSource {
  return memoKernel(`maskedPairSerialKernel ${JSON.stringify([epilogue])}`, () => {
    const loss = `
${entry1d(SERIAL_WG)} {
  let r = ${linearIndex(SERIAL_WG)};
  if (r >= u.rows) { return; }
  let b = r / u.Ns;
  let j = r - b * u.Ns;
  let sBase = r * u.C;
  var part = 0.0;
  for (var i = 0u; i < u.Nt; i++) {
    let m = mask[(b * u.Nt + i) * u.Ns + j];
    if (m != 0.0) {
      let pBase = (b * u.Nt + i) * u.C;
      var dot = 0.0;
      for (var c = 0u; c < u.C; c++) { dot += probs[pBase + c] * logProbs[sBase + c]; }
      part += m * dot;
    }
  }
  out[r] = -part;
}`;
    const grad = `
@compute @workgroup_size(${PAIR_GRAD_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y;
  let c = wid.x * ${PAIR_GRAD_WG}u + lid;
  if (c >= u.C) { return; }
  let b = r / u.Ns;
  let j = r - b * u.Ns;
  var q = 0.0;
  var mj = 0.0;
  for (var i = 0u; i < u.Nt; i++) {
    let m = mask[(b * u.Nt + i) * u.Ns + j];
    mj += m;
    q += m * probs[(b * u.Nt + i) * u.C + c];
  }
  let o = r * u.C + c;
  out[o] = g[b] / u.studentTemp * (mj * exp(logProbs[o]) - q);
}`;
    return defineKernel(`sce_pairs_serial_${epilogue}`, pairsDecl(epilogue, true), epilogue === 'loss' ? loss : grad);
  });
}
