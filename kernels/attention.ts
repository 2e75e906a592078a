// Fused scaled-dot-product attention, flash-attention style: softmax(Q K^T * scale + mask) V for
// Q, K, V of [BH, T, Dh] (contiguous), never writing the T x T matrix to memory.
//
// A workgroup of R invocations owns R rows (query rows in the forward and dQ kernels, key rows in
// the dK/dV kernel) of one (b, h) and keeps each row's vectors in registers as Dh/4 vec4s with
// constant names. The other operand streams by in tiles of R rows: each invocation loads one row of
// the tile into registers and shares it with the others, either with subgroupBroadcast (register to
// register, where the adapter has one fixed subgroup size and R equals it) or through workgroup
// memory (portable). With subgroups the loop over a tile's rows is unrolled (broadcasts need
// constant lanes), so the online-softmax rescale of the output accumulator is paid once per tile.
// Why subgroups: lavapipe runs a workgroup as SIMD lanes and performs every workgroup-memory load
// inside a loop lane by lane, while a broadcast is one extract + splat: 3-4x faster there.
//
// Layouts: 'heads' reads q, k, v as [BH, T, Dh] tensors of their own; 'packed' reads all three from
// the fused projection's output [B, T, 3·H·Dh] (feature = part·H·Dh + head·Dh + e) and writes the
// output with the heads merged, [B, T, H·Dh], and the gradients into one [B, T, 3·H·Dh] tensor: the
// head split and merge cost no dispatches of their own (4 a layer and step; bench/NOTES.md).
//
// Masked scores: mask values are clamped to >= -1e38 so every score stays finite; the running max
// starts at FLOOR = -1e30, so a row whose max never rises above FLOOR had every key masked (by -inf
// or anything <= -1e30) and is defined as a zero output row, with log-sum-exp EMPTY_LSE (a large
// positive value, so the backward recomputes zero probabilities for it).
import {
  defineKernel,
  entry1d,
  linearIndex,
  spill,
  spillGroups,
  spillIndex,
  type BindingDecl,
  type KernelDecl,
  type KernelSource,
  type UniformValues,
  memoKernel,
} from './kernel.js';

/** How the invocations of a workgroup share the streamed tile. */
export type Staging = 'subgroup' | 'workgroup';

/** Static launch shape of the attention kernels (part of every kernel key). */
export interface AttentionPlan {
  staging: Staging;
  /** Invocations per workgroup = rows per streamed tile. */
  lanes: number;
  /** Rows each invocation owns: every tile row loaded is reused this many times. */
  rowsPerLane: number;
  /**
   * Subgroup staging: tile rows the step code is unrolled for (default `lanes`). Fewer only when the
   * streamed sequence (keys, or queries for dK/dV) is that short, so one tile holds it all: the rows
   * past it were dead code that lavapipe compiled and ran (bench/NOTES.md, "Cold start").
   */
  tileRows?: number;
}

/** Rows owned by one workgroup of `p`. */
export function planRows(p: AttentionPlan): number {
  return p.lanes * p.rowsPerLane;
}

/** Head widths the kernels are generated for: a multiple of 4 (vec4 registers) up to 128. */
export function attentionHeadDimSupported(dh: number): boolean {
  return Number.isInteger(dh) && dh % 4 === 0 && dh >= 4 && dh <= 128;
}

/** Invocations of the cls-attention kernel (one workgroup per (b, h)). */
export const CLS_WG = 64;

const FLOOR = '-1e30';
const MASKED = '-3e38';
const MASK_CLAMP = '-1e38';
const EMPTY_LSE = '1e30';

/**
 * Uniform block shared by every attention kernel: BH = B * H rows of the batch-head grid, H heads,
 * Tq queries, Tk keys, the score scale, and the mask's strides over (b, h, query, key), 0 where the
 * mask is broadcast.
 */
const UNIFORMS: KernelDecl['uniforms'] = [
  ['BH', 'u32'],
  ['H', 'u32'],
  ['Tq', 'u32'],
  ['Tk', 'u32'],
  ['scale', 'f32'],
  ['mB', 'u32'],
  ['mH', 'u32'],
  ['mQ', 'u32'],
  ['mK', 'u32'],
];

/** The uniform values of every attention kernel; `maskStrides` are (b, h, query, key), absent ones 0. */
export function attentionUniforms(BH: number, H: number, Tq: number, Tk: number, scale: number, maskStrides: readonly number[]): UniformValues {
  const [mB = 0, mH = 0, mQ = 0, mK = 0] = maskStrides;
  return { BH, H, Tq, Tk, scale, mB, mH, mQ, mK };
}

const V4: string = 'vec4<f32>';
const bind = (names: string, type: string): BindingDecl[] => names.split(' ').map((name) => ({ name, type }));

/** An attention kernel's declaration: f32 `outputs` and `inputs` as (names, element type) runs, then the mask when `masked`. */
function attentionDecl(outputs: BindingDecl[], inputs: BindingDecl[], masked: boolean): KernelDecl {
  return { uniforms: UNIFORMS, outputs, inputs: masked ? [...inputs, ...bind('mask', 'f32')] : inputs };
}

const seq = (n: number): number[] => [...Array(n).keys()];
const lines = (n: number, f: (i: number) => string, sep = '\n  '): string => seq(n).map(f).join(sep);

function checkHeadDim(dh: number): void {
  if (!attentionHeadDimSupported(dh)) throw new Error(`attention kernels: head dim ${dh} is not a multiple of 4 in 4..128`);
}

function checkPlan(dh: number, p: AttentionPlan): void {
  checkHeadDim(dh);
  const ok = (n: number, max: number): boolean => Number.isInteger(n) && n >= 1 && n <= max;
  if (!ok(p.lanes, 128) || !ok(p.rowsPerLane, 8) || (p.tileRows !== undefined && !ok(p.tileRows, p.lanes))) {
    throw new Error(`attention kernels: plan ${JSON.stringify(p)} is outside 1..128 lanes, 1..8 rows per lane, 1..lanes tile rows`);
  }
}

function planKey(dh: number, p: AttentionPlan, masked: boolean): string {
  const rows = p.tileRows !== undefined && p.tileRows < p.lanes ? `t${p.tileRows}` : '';
  return `${dh}_${p.staging === 'subgroup' ? 'sg' : 'wg'}${p.lanes}x${p.rowsPerLane}${rows}${masked ? '_mask' : ''}`;
}

/** Kernel-key suffix of a layout ('heads' keeps the keys it always had). */
function layoutKey(layout: AttentionLayout): string {
  return layout === 'packed' ? '_packed' : '';
}

/** Where q, k, v and the output rows live (see the header). */
export type AttentionLayout = 'heads' | 'packed';

/** A row's role: a query, key or value row, or an output row (out, dO, O). */
type Role = 'q' | 'k' | 'v' | 'o';

/**
 * Row addressing of a layout: `setup` (WGSL, after \`bh\` is known) and `at(role, t, d)`, the vec4
 * index of vec4 `d` of row `t` of this (b, h) in its tensor. Packed: the (b, h) bases are computed
 * once per invocation, so the inner loops add one multiply per row.
 */
function rowAddressing(layout: AttentionLayout, dv: number): { setup: string; at: (role: Role, t: string, d: number) => string } {
  if (layout === 'heads') {
    const T = (role: Role): string => (role === 'k' || role === 'v' ? 'u.Tk' : 'u.Tq');
    return { setup: '', at: (role, t, d) => `(bh * ${T(role)} + ${t}) * ${dv}u + ${d}u` };
  }
  return {
    setup: `let hb = bh / u.H;
  let hh = bh % u.H;
  let sQKV = 3u * u.H * ${dv}u;
  let sO = u.H * ${dv}u;
  let qB = (hb * u.Tq * 3u * u.H + hh) * ${dv}u;
  let kB = qB + sO;
  let vB = kB + sO;
  let oB = (hb * u.Tq * u.H + hh) * ${dv}u;`,
    at: (role, t, d) => (role === 'o' ? `oB + (${t}) * sO + ${d}u` : `${role}B + (${t}) * sQKV + ${d}u`),
  };
}

/** The binding a role is read from (`heads` names it) or its gradient written to, in a layout. */
function source(layout: AttentionLayout, heads: string, grad = false): string {
  return layout === 'packed' ? (grad ? 'dqkv' : 'qkv') : heads;
}

/** Mask element (bh, query `qi`, key `kj`) from the uniform strides, clamped to stay finite. */
const MASK_FN = /* wgsl */ `
fn maskAt(bh: u32, qi: u32, kj: u32) -> f32 {
  return max(mask[(bh / u.H) * u.mB + (bh % u.H) * u.mH + qi * u.mQ + kj * u.mK], ${MASK_CLAMP});
}`;

/** dot over Dh/4 vec4 pairs as one vec4 accumulator (4 independent chains), then a horizontal add. */
function dotRows(dv: number, a: (d: number) => string, b: (d: number) => string): string {
  let acc = `${a(0)} * ${b(0)}`;
  for (let d = 1; d < dv; d++) acc = `fma(${a(d)}, ${b(d)}, ${acc})`;
  return `dot(${acc}, vec4<f32>(1.0))`;
}

/** `name${d}` for the Dh/4 registers of a row. */
const reg =
  (name: string) =>
  (d: number): string =>
    `${name}${d}`;

/** A row of the streamed tile as seen by the step code: its index expression and a name suffix. */
interface TileRow {
  idx: string;
  tag: string;
}

/**
 * The streamed tile. Every invocation holds one tile row in registers (`${name}${d}` vectors,
 * `${name}` scalars); `vec(name, c, d)` / `scalar(name, c)` read row c of the tile. `each` wraps a
 * step over tile rows: unrolled over all rows with subgroups (broadcasts need constant lanes), a
 * loop over the valid rows with workgroup memory (unrolling it would multiply lavapipe's
 * lane-by-lane loads into minutes of compile time).
 */
interface Tile {
  decls: string;
  share: string;
  vec: (name: string, c: string, d: number) => string;
  scalar: (name: string, c: string) => string;
  each: (step: (rows: TileRow[]) => string) => string;
}

function tile(p: AttentionPlan, dv: number, vecs: string[], scalars: string[] = []): Tile {
  if (p.staging === 'subgroup') {
    return {
      decls: '',
      share: '',
      vec: (name, c, d) => `subgroupBroadcast(${name}${d}, ${c})`,
      scalar: (name, c) => `subgroupBroadcast(${name}, ${c})`,
      each: (step) => step(seq(p.tileRows ?? p.lanes).map((c) => ({ idx: `${c}u`, tag: `${c}` }))),
    };
  }
  return {
    decls: [...vecs.map((n) => `var<workgroup> ${n}_t: array<vec4<f32>, ${p.lanes * dv}>;`), ...scalars.map((n) => `var<workgroup> ${n}_t: array<f32, ${p.lanes}>;`)].join('\n'),
    share: `workgroupBarrier();
    ${[...vecs.flatMap((n) => seq(dv).map((d) => `${n}_t[lane * ${dv}u + ${d}u] = ${n}${d};`)), ...scalars.map((n) => `${n}_t[lane] = ${n};`)].join('\n    ')}
    workgroupBarrier();`,
    vec: (name, c, d) => `${name}_t[${c} * ${dv}u + ${d}u]`,
    scalar: (name, c) => `${name}_t[${c}]`,
    each: (step) => `for (var c = 0u; c < min(${p.lanes}u, n); c++) {
      ${step([{ idx: 'c', tag: '' }])}
    }`,
  };
}

function header(p: AttentionPlan): string {
  return p.staging === 'subgroup' ? 'enable subgroups;' : '';
}

function entry(p: AttentionPlan): string {
  const lane = p.staging === 'subgroup' ? ', @builtin(subgroup_invocation_id) lane: u32' : '';
  return `@compute @workgroup_size(${p.lanes})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32${lane})`;
}

/** Workgroup memory uses the local index as the tile row; subgroups use the lane. */
function laneDecl(p: AttentionPlan): string {
  return p.staging === 'subgroup' ? '' : 'let lane = lid;';
}

/**
 * The rows an invocation owns, `rowsPerLane` of them `lanes` apart: index `${v}${r}`, clamped index
 * `${v}c${r}` (rows past the end compute on the last row and are not written) and flat row `row${r}`.
 */
function ownedRows(p: AttentionPlan, v: string, T: string): string {
  return seq(p.rowsPerLane)
    .map(
      (r) => `let ${v}${r} = wid.x * ${planRows(p)}u + ${r * p.lanes}u + lid;
  let ${v}c${r} = min(${v}${r}, u.${T} - 1u);
  let row${r} = bh * u.${T} + ${v}c${r};`,
    )
    .join('\n  ');
}

/** Per owned row r: `f(r)` joined into statements. */
function perRow(p: AttentionPlan, f: (r: number) => string, sep = '\n  '): string {
  return seq(p.rowsPerLane).map(f).join(sep);
}

/**
 * Forward: bindings out [BH, Tq, Dh], lse [BH, Tq], q, k, v (and mask when `masked`).
 * Launch `attentionGroups(Tq, planRows(plan), BH)`.
 */
export function attentionForwardKernel(dh: number, masked: boolean, p: AttentionPlan, layout: AttentionLayout = 'heads'): KernelSource {
  return memoKernel(`attentionForwardKernel ${JSON.stringify([dh, masked, p, layout])}`, () => buildAttentionForwardKernel(dh, masked, p, layout));
}

function buildAttentionForwardKernel(dh: number, masked: boolean, p: AttentionPlan, layout: AttentionLayout): KernelSource {
  checkPlan(dh, p);
  const dv = dh / 4;
  const { setup, at } = rowAddressing(layout, dv);
  const t = tile(p, dv, ['kk', 'vv']);
  // All scores of the step first (the running max needs them), then one rescale and the P V update.
  const step = (rows: TileRow[]): string => `
    ${rows
      .map(
        (c) => `${lines(dv, (d) => `let kc${c.tag}_${d} = ${t.vec('kk', c.idx, d)};`, '\n    ')}
    ${perRow(p, (r) => `let s${r}_${c.tag} = select(${MASKED}, ${dotRows(dv, reg(`q${r}_`), reg(`kc${c.tag}_`))}${masked ? ` + maskAt(bh, qc${r}, min(t0 + ${c.idx}, u.Tk - 1u))` : ''}, ${c.idx} < n);`, '\n    ')}`,
      )
      .join('\n    ')}
    ${perRow(
      p,
      (r) => `let mn${r} = ${rows.reduce((acc, c) => `max(${acc}, s${r}_${c.tag})`, `m${r}`)};
    let alpha${r} = exp(m${r} - mn${r});
    m${r} = mn${r};
    ${rows.map((c) => `let p${r}_${c.tag} = exp(s${r}_${c.tag} - mn${r});`).join('\n    ')}
    l${r} = l${r} * alpha${r} + ${rows.map((c) => `p${r}_${c.tag}`).join(' + ')};
    ${lines(dv, (d) => `o${r}_${d} *= alpha${r};`, '\n    ')}`,
      '\n    ',
    )}
    ${rows
      .map(
        (c) => `${lines(dv, (d) => `let vc${c.tag}_${d} = ${t.vec('vv', c.idx, d)};`, '\n    ')}
    ${perRow(p, (r) => lines(dv, (d) => `o${r}_${d} = fma(vec4<f32>(p${r}_${c.tag}), vc${c.tag}_${d}, o${r}_${d});`, '\n    '), '\n    ')}`,
      )
      .join('\n    ')}`;
  const code = /* wgsl */ `${header(p)}
${masked ? MASK_FN : ''}
${t.decls}

${entry(p)} {
  let bh = ${spillIndex('wid.y', 'wid.z')};
  if (bh >= u.BH) { return; }
  ${laneDecl(p)}
  ${setup}
  ${ownedRows(p, 'q', 'Tq')}
  ${perRow(p, (r) => lines(dv, (d) => `let q${r}_${d} = ${source(layout, 'q')}[${at('q', `qc${r}`, d)}] * u.scale;`))}
  ${perRow(p, (r) => lines(dv, (d) => `var o${r}_${d} = vec4<f32>();`))}
  ${perRow(
    p,
    (r) => `var m${r} = ${FLOOR};
  var l${r} = 0.0;`,
  )}
  for (var t0 = 0u; t0 < u.Tk; t0 += ${p.lanes}u) {
    let kt = min(t0 + lane, u.Tk - 1u);
    ${lines(dv, (d) => `let kk${d} = ${source(layout, 'k')}[${at('k', 'kt', d)}];`, '\n    ')}
    ${lines(dv, (d) => `let vv${d} = ${source(layout, 'v')}[${at('v', 'kt', d)}];`, '\n    ')}
    ${t.share}
    let n = u.Tk - t0;
    ${t.each(step)}
  }
  ${perRow(
    p,
    (r) => `if (q${r} < u.Tq) {
    let none = m${r} <= ${FLOOR};
    let inv = select(1.0 / l${r}, 0.0, none);
    ${lines(dv, (d) => `out[${at('o', `qc${r}`, d)}] = o${r}_${d} * inv;`, '\n    ')}
    lse[row${r}] = select(m${r} + log(l${r}), ${EMPTY_LSE}, none);
  }`,
  )}
}`;
  const decl = attentionDecl([...bind('out', V4), ...bind('lse', 'f32')], bind(layout === 'packed' ? 'qkv' : 'q k v', V4), masked);
  return defineKernel(`attn_fwd_${planKey(dh, p, masked)}${layoutKey(layout)}`, decl, code);
}

/** D = rowsum(dO * O): bindings D [BH * Tq], dO, O. Launch `grid1d(BH * Tq)`. */
export function attentionRowDotKernel(dh: number, layout: AttentionLayout = 'heads'): KernelSource {
  return memoKernel(`attentionRowDotKernel ${JSON.stringify([dh, layout])}`, () => buildAttentionRowDotKernel(dh, layout));
}

function buildAttentionRowDotKernel(dh: number, layout: AttentionLayout): KernelSource {
  checkHeadDim(dh);
  const dv = dh / 4;
  // Packed: row r = bh * T + t of D, read from dO and O [B, T, H, Dh] at ((b * T + t) * H + h) * Dh.
  const base =
    layout === 'packed'
      ? `let bh = r / u.T;
  let o = ((bh / u.H) * u.T * u.H + (r % u.T) * u.H + bh % u.H) * ${dv}u;`
      : `let o = r * ${dv}u;`;
  const code = /* wgsl */ `
${entry1d()} {
  let r = ${linearIndex()};
  if (r >= u.n) { return; }
  ${base}
  D[r] = ${dotRows(
    dv,
    (d) => `dO[o + ${d}u]`,
    (d) => `O[o + ${d}u]`,
  )};
}`;
  const uniforms: KernelDecl['uniforms'] =
    layout === 'packed'
      ? [
          ['n', 'u32'],
          ['T', 'u32'],
          ['H', 'u32'],
        ]
      : [['n', 'u32']];
  return defineKernel(`attn_rowdot_${dh}${layoutKey(layout)}`, { uniforms, outputs: bind('D', 'f32'), inputs: bind('dO O', V4) }, code);
}

/**
 * dQ = scale * sum_j P_ij (dP_ij - D_i) K_j with P recomputed from the saved log-sum-exp:
 * bindings dq, q, k, v, dO, lse, D (and mask). Launch `attentionGroups(Tq, planRows(plan), BH)`.
 */
export function attentionGradQKernel(dh: number, masked: boolean, p: AttentionPlan, layout: AttentionLayout = 'heads'): KernelSource {
  return memoKernel(`attentionGradQKernel ${JSON.stringify([dh, masked, p, layout])}`, () => buildAttentionGradQKernel(dh, masked, p, layout));
}

function buildAttentionGradQKernel(dh: number, masked: boolean, p: AttentionPlan, layout: AttentionLayout): KernelSource {
  checkPlan(dh, p);
  const dv = dh / 4;
  const { setup, at } = rowAddressing(layout, dv);
  const t = tile(p, dv, ['kk', 'vv']);
  const step = (rows: TileRow[]): string =>
    rows
      .map(
        (c) => `
    ${lines(dv, (d) => `let kc${c.tag}_${d} = ${t.vec('kk', c.idx, d)};`, '\n    ')}
    ${lines(dv, (d) => `let vc${c.tag}_${d} = ${t.vec('vv', c.idx, d)};`, '\n    ')}
    ${perRow(
      p,
      (
        r,
      ) => `let s${r}_${c.tag} = select(${MASKED}, ${dotRows(dv, reg(`q${r}_`), reg(`kc${c.tag}_`))}${masked ? ` + maskAt(bh, qc${r}, min(t0 + ${c.idx}, u.Tk - 1u))` : ''}, ${c.idx} < n);
    let ds${r}_${c.tag} = exp(s${r}_${c.tag} - L${r}) * (${dotRows(dv, reg(`g${r}_`), reg(`vc${c.tag}_`))} - D${r});
    ${lines(dv, (d) => `a${r}_${d} = fma(vec4<f32>(ds${r}_${c.tag}), kc${c.tag}_${d}, a${r}_${d});`, '\n    ')}`,
      '\n    ',
    )}`,
      )
      .join('');
  const code = /* wgsl */ `${header(p)}
${masked ? MASK_FN : ''}
${t.decls}

${entry(p)} {
  let bh = ${spillIndex('wid.y', 'wid.z')};
  if (bh >= u.BH) { return; }
  ${laneDecl(p)}
  ${setup}
  ${ownedRows(p, 'q', 'Tq')}
  ${perRow(p, (r) => lines(dv, (d) => `let q${r}_${d} = ${source(layout, 'q')}[${at('q', `qc${r}`, d)}] * u.scale;`))}
  ${perRow(p, (r) => lines(dv, (d) => `let g${r}_${d} = dO[${at('o', `qc${r}`, d)}];`))}
  ${perRow(p, (r) => lines(dv, (d) => `var a${r}_${d} = vec4<f32>();`))}
  ${perRow(
    p,
    (r) => `let L${r} = lse[row${r}];
  let D${r} = D[row${r}];`,
  )}
  for (var t0 = 0u; t0 < u.Tk; t0 += ${p.lanes}u) {
    let kt = min(t0 + lane, u.Tk - 1u);
    ${lines(dv, (d) => `let kk${d} = ${source(layout, 'k')}[${at('k', 'kt', d)}];`, '\n    ')}
    ${lines(dv, (d) => `let vv${d} = ${source(layout, 'v')}[${at('v', 'kt', d)}];`, '\n    ')}
    ${t.share}
    let n = u.Tk - t0;
    ${t.each(step)}
  }
  ${perRow(
    p,
    (r) => `if (q${r} < u.Tq) {
    ${lines(dv, (d) => `${source(layout, 'dq', true)}[${at('q', `qc${r}`, d)}] = a${r}_${d} * u.scale;`, '\n    ')}
  }`,
  )}
}`;
  const decl = attentionDecl(bind(source(layout, 'dq', true), V4), [...bind(layout === 'packed' ? 'qkv dO' : 'q k v dO', V4), ...bind('lse D', 'f32')], masked);
  return defineKernel(`attn_dq_${planKey(dh, p, masked)}${layoutKey(layout)}`, decl, code);
}

/**
 * dV = sum_i P_ij dO_i and dK = scale * sum_i P_ij (dP_ij - D_i) Q_i for owned key rows, streaming
 * query tiles: bindings dk, dv, q, k, v, dO, lse, D (and mask).
 * Launch `attentionGroups(Tk, planRows(plan), BH)`.
 */
export function attentionGradKVKernel(dh: number, masked: boolean, p: AttentionPlan, layout: AttentionLayout = 'heads'): KernelSource {
  return memoKernel(`attentionGradKVKernel ${JSON.stringify([dh, masked, p, layout])}`, () => buildAttentionGradKVKernel(dh, masked, p, layout));
}

function buildAttentionGradKVKernel(dh: number, masked: boolean, p: AttentionPlan, layout: AttentionLayout): KernelSource {
  checkPlan(dh, p);
  const dv = dh / 4;
  const { setup, at } = rowAddressing(layout, dv);
  const t = tile(p, dv, ['qq', 'gg'], ['ll', 'dd']);
  const step = (rows: TileRow[]): string =>
    rows
      .map(
        (c) => `
    ${lines(dv, (d) => `let qc${c.tag}_${d} = ${t.vec('qq', c.idx, d)};`, '\n    ')}
    ${lines(dv, (d) => `let gc${c.tag}_${d} = ${t.vec('gg', c.idx, d)};`, '\n    ')}
    let lc${c.tag} = ${t.scalar('ll', c.idx)};
    let dc${c.tag} = ${t.scalar('dd', c.idx)};
    ${perRow(
      p,
      (
        r,
      ) => `let s${r}_${c.tag} = select(${MASKED}, ${dotRows(dv, reg(`qc${c.tag}_`), reg(`k${r}_`))}${masked ? ` + maskAt(bh, min(t0 + ${c.idx}, u.Tq - 1u), kc${r})` : ''}, ${c.idx} < n);
    let p${r}_${c.tag} = exp(s${r}_${c.tag} - lc${c.tag});
    let ds${r}_${c.tag} = p${r}_${c.tag} * (${dotRows(dv, reg(`gc${c.tag}_`), reg(`v${r}_`))} - dc${c.tag});
    ${lines(dv, (d) => `dv${r}_${d} = fma(vec4<f32>(p${r}_${c.tag}), gc${c.tag}_${d}, dv${r}_${d});`, '\n    ')}
    ${lines(dv, (d) => `dk${r}_${d} = fma(vec4<f32>(ds${r}_${c.tag}), qc${c.tag}_${d}, dk${r}_${d});`, '\n    ')}`,
      '\n    ',
    )}`,
      )
      .join('');
  const code = /* wgsl */ `${header(p)}
${masked ? MASK_FN : ''}
${t.decls}

${entry(p)} {
  let bh = ${spillIndex('wid.y', 'wid.z')};
  if (bh >= u.BH) { return; }
  ${laneDecl(p)}
  ${setup}
  ${ownedRows(p, 'k', 'Tk')}
  ${perRow(p, (r) => lines(dv, (d) => `let k${r}_${d} = ${source(layout, 'k')}[${at('k', `kc${r}`, d)}];`))}
  ${perRow(p, (r) => lines(dv, (d) => `let v${r}_${d} = ${source(layout, 'v')}[${at('v', `kc${r}`, d)}];`))}
  ${perRow(p, (r) => lines(dv, (d) => `var dk${r}_${d} = vec4<f32>();`))}
  ${perRow(p, (r) => lines(dv, (d) => `var dv${r}_${d} = vec4<f32>();`))}
  for (var t0 = 0u; t0 < u.Tq; t0 += ${p.lanes}u) {
    let qt = min(t0 + lane, u.Tq - 1u);
    let qr = bh * u.Tq + qt;
    ${lines(dv, (d) => `let qq${d} = ${source(layout, 'q')}[${at('q', 'qt', d)}] * u.scale;`, '\n    ')}
    ${lines(dv, (d) => `let gg${d} = dO[${at('o', 'qt', d)}];`, '\n    ')}
    let ll = lse[qr];
    let dd = D[qr];
    ${t.share}
    let n = u.Tq - t0;
    ${t.each(step)}
  }
  ${perRow(
    p,
    (r) => `if (k${r} < u.Tk) {
    ${lines(dv, (d) => `${source(layout, 'dk', true)}[${at('k', `kc${r}`, d)}] = dk${r}_${d};`, '\n    ')}
    ${lines(dv, (d) => `${source(layout, 'dvOut', true)}[${at('v', `kc${r}`, d)}] = dv${r}_${d};`, '\n    ')}
  }`,
  )}
}`;
  const decl = attentionDecl(bind(layout === 'packed' ? 'dqkv' : 'dk dvOut', V4), [...bind(layout === 'packed' ? 'qkv dO' : 'q k v dO', V4), ...bind('lse D', 'f32')], masked);
  return defineKernel(`attn_dkv_${planKey(dh, p, masked)}${layoutKey(layout)}`, decl, code);
}

/**
 * Probabilities of query row 0 for keys 1..Tk-1, per (b, h): probs [BH, Tk - 1], bindings probs,
 * q, k (and mask). One workgroup per (b, h) recomputes row 0's log-sum-exp (O(Tk * Dh), cheaper than
 * keeping the forward's), parking the scores in `probs` between the two passes.
 * Launch `clsAttentionGroups(BH)`.
 */
export function clsAttentionKernel(dh: number, masked: boolean): KernelSource {
  return memoKernel(`clsAttentionKernel ${JSON.stringify([dh, masked])}`, () => buildClsAttentionKernel(dh, masked));
}

function buildClsAttentionKernel(dh: number, masked: boolean): KernelSource {
  checkHeadDim(dh);
  const dv = dh / 4;
  const code = /* wgsl */ `${masked ? MASK_FN : ''}
var<workgroup> pm: array<f32, ${CLS_WG}>;
var<workgroup> pl: array<f32, ${CLS_WG}>;

@compute @workgroup_size(${CLS_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = ${spillIndex('wid.x', 'wid.y')};
  if (bh >= u.BH) { return; }
  ${lines(dv, (d) => `let q${d} = q[bh * u.Tq * ${dv}u + ${d}u] * u.scale;`)}
  let base = bh * (u.Tk - 1u);
  var m = ${FLOOR};
  var l = 0.0;
  for (var j = lid; j < u.Tk; j += ${CLS_WG}u) {
    let s = ${dotRows(
      dv,
      (d) => `q${d}`,
      (d) => `k[(bh * u.Tk + j) * ${dv}u + ${d}u]`,
    )}${masked ? ' + maskAt(bh, 0u, j)' : ''};
    if (j > 0u) { probs[base + j - 1u] = s; }
    let mn = max(m, s);
    l = l * exp(m - mn) + exp(s - mn);
    m = mn;
  }
  pm[lid] = m;
  pl[lid] = l;
  workgroupBarrier();
  for (var w = ${CLS_WG / 2}u; w > 0u; w >>= 1u) {
    if (lid < w) {
      let mn = max(pm[lid], pm[lid + w]);
      pl[lid] = pl[lid] * exp(pm[lid] - mn) + pl[lid + w] * exp(pm[lid + w] - mn);
      pm[lid] = mn;
    }
    workgroupBarrier();
  }
  let none = pm[0] <= ${FLOOR};
  let L = pm[0] + log(pl[0]);
  // The same invocation reads back the scores it wrote: no barrier on the storage buffer needed.
  for (var j = lid; j < u.Tk; j += ${CLS_WG}u) {
    if (j > 0u) { probs[base + j - 1u] = select(exp(probs[base + j - 1u] - L), 0.0, none); }
  }
}`;
  return defineKernel(`attn_cls_${dh}${masked ? '_mask' : ''}`, attentionDecl(bind('probs', 'f32'), bind('q k', V4), masked), code);
}

/** Workgroups for `n` rows per batch-head slice in blocks of `rows`, over BH slices. */
export function attentionGroups(n: number, rows: number, BH: number): [number, number, number] {
  return [Math.ceil(n / rows), ...spill(BH)];
}

/** One workgroup per (b, h). */
export function clsAttentionGroups(BH: number): [number, number, number] {
  return spillGroups(BH);
}
