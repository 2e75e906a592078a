// Batched matmul C[z] = op(A[z]) @ op(B[z]): register-blocked tiles, transposed reads, broadcast
// batches, and a fused bias/GELU epilogue.
//
// Why these shapes: on lavapipe (the software Vulkan driver this project runs on) a workgroup executes
// as SIMD lanes, and every storage-buffer load, whatever its address, becomes a loop over the lanes
// with a bounds check per lane (read off GALLIVM_DEBUG=asm: ~5 instructions per lane and component),
// so the cost of a kernel is the number of lane-loads, and a value every lane needs (a row of A shared
// by one row of threads) costs as much as one value per lane. With subgroups (`sg` > 0) the lanes of
// a subgroup load `sg` different rows of A, one each, and hand them to one another with
// subgroupBroadcast (an extract and a splat): A costs 1/sg of its lane-loads, and B, one distinct
// vec4 per lane, is what is left. Measured on lavapipe at the ViT step's four layouts
// (`npx tsx bench/matmul-tiles.ts`): 8 x 4 per thread without subgroups 16-17 GFLOP/s, with subgroups
// 16 x 4 42-49 and 32 x 4 48-54 (bench/NOTES.md, "Issue #14"). Workgroup memory (a staged A tile,
// `tk` > 0) is the GPU layout; on lavapipe its loads are lane loops too and its barriers coroutine
// switches, and it measured 2x slower than reading A directly.
import { MATH } from './elementwise.js';
import { defineKernel, MAX_GROUPS, type BindingDecl, type KernelDecl, type KernelSource, type UniformValues, memoKernel } from './kernel.js';

/**
 * A workgroup computes a `tm` x `tn` block of C; each of its (tn/rn) x (tm/rm) threads accumulates
 * `rm` rows x `rn` columns in registers. `tk` > 0 stages A through workgroup memory `tk` columns of K
 * at a time; `tk` = 0 reads A from global memory. All are multiples of 4 (vec4 tiles and accumulators).
 * `sg` > 0 (the adapter's fixed subgroup size) shares A's rows by subgroup broadcasts: one row of
 * `sg` threads (tn = sg * rn, tm = rm, tk = 0).
 */
export interface MatmulTiles {
  tm: number;
  tn: number;
  tk: number;
  rm: number;
  rn: number;
  sg?: number;
}

/**
 * Software adapters without a fixed subgroup size: one SIMD-width row of 8 threads reading A directly,
 * 8 x 4 outputs each (16 GFLOP/s on lavapipe, a third of the subgroup tiles; bench/NOTES.md, "What was
 * tried" and "Issue #14").
 */
export const LAVAPIPE_TILES: MatmulTiles = { tm: 8, tn: 32, tk: 0, rm: 8, rn: 4 };

/**
 * Lavapipe with subgroups of `sg` lanes: `rows` (default 32) rows x 4 columns per thread, A shared by
 * broadcasts (16 x 4 and 32 x 4 were the best of 8-64 rows x 4-8 columns for large products; see the
 * header; small ones take 16, engine/ops/matmul.ts).
 */
export function subgroupTiles(sg: number, rows = 32): MatmulTiles {
  return { tm: rows, tn: sg * 4, tk: 0, rm: rows, rn: 4, sg };
}

/** For a hardware GPU: a 16 x 8 grid of threads sharing a staged A tile (correctness-tested here, not tuned). */
export const GPU_TILES: MatmulTiles = { tm: 64, tn: 64, tk: 16, rm: 8, rn: 4 };

/** Batch axes the kernel decomposes the z index into (more are collapsed or rejected by the caller). */
export const MATMUL_MAX_BATCH_RANK = 4;

export interface MatmulOptions {
  /** A is stored [K, M] (read transposed). */
  transA: boolean;
  /** B is stored [N, K] (read transposed). */
  transB: boolean;
  /** Add bias[n] (binding after B) to every row. */
  bias: boolean;
  /** Apply exact GELU after the bias; 'out+pre' also writes the pre-activation (second output). */
  gelu: 'none' | 'out' | 'out+pre';
  /**
   * Add res[batch, M, N] (binding after bias) last, after the GELU: a residual connection in the same
   * dispatch as its branch's projection (optional; absent means false).
   */
  residual?: boolean;
  /**
   * Also write the row sums of op(A), sum_k op(A)[i, k], to `rsum` [M] (an output binding after `pre`):
   * linear's bias gradient (the column sums of dY) made by the dweight product, which reads every
   * element of dY anyway, instead of a reduction dispatch of its own. One batch only (optional).
   */
  rowSums?: boolean;
  /**
   * vec4 memory access, allowed when the axis it runs along is a multiple of 4 (so a vec4 never
   * straddles a row end): A along its contiguous axis (K, or M when transposed), B likewise
   * (N, or K when transposed), C (and bias, pre) along N.
   */
  vecA: boolean;
  vecB: boolean;
  vecC: boolean;
  tiles: MatmulTiles;
}

function checkTiles(t: MatmulTiles): void {
  const ok = [t.tm, t.tn, t.tk, t.rm, t.rn].every((v) => Number.isInteger(v) && v >= 0 && v % 4 === 0) && t.rm > 0 && t.rn > 0 && t.tm % t.rm === 0 && t.tn % t.rn === 0;
  if (!ok) throw new Error(`matmul kernel: tiles ${JSON.stringify(t)} must be multiples of 4 with rm | tm and rn | tn`);
  const sg = t.sg ?? 0;
  if (sg > 0 && !(t.tk === 0 && t.tm === t.rm && t.tn === sg * t.rn && (t.rm <= 4 * sg || t.rm % (4 * sg) === 0) && (t.rm >= sg ? t.rm % sg === 0 : sg % t.rm === 0))) {
    throw new Error(`matmul kernel: subgroup tiles ${JSON.stringify(t)} need tk 0, tm = rm, tn = sg * rn, rm a multiple or divisor of sg, and rm <= 4 sg or a multiple of it`);
  }
}

const QUAD = [0, 1, 2, 3];

/** `count` expressions, joined. */
const each = (count: number, f: (i: number) => string, sep = '\n      '): string => [...Array(count).keys()].map(f).join(sep);

/**
 * A vec4 of `name` from element `at` (a multiple of 4 when `vec`), 0 where one of `ok(c)`'s conditions
 * fails for element c. The conditions are joined with `&`, not `&&`: WGSL's `&&` short-circuits, so each
 * load became a branch, and SwiftShader (Chromium's fallback adapter) never finished compiling a kernel
 * of 48 such loads (still compiling after 300 s; with `&` the same kernel takes 0.4-1.1 s there, and the
 * 16 variants of the two software tile shapes at most 1.2 s; issue #24).
 */
function load4(name: string, vec: boolean, at: string, ok: (c: number) => string[]): string {
  const all = (c: number): string =>
    ok(c)
      .map((x) => `(${x})`)
      .join(' & ');
  return vec ? `select(vec4f(0.0), ${name}[(${at}) / 4u], ${all(0)})` : `vec4f(${QUAD.map((c) => `select(0.0, ${name}[${at} + ${c}u], ${all(c)})`).join(', ')})`;
}

/**
 * Bindings: 1 out [batch, M, N], (2 pre [batch, M, N] with gelu 'out+pre'), (rsum [M] with rowSums), then a, b,
 * (bias [N]), (res [batch, M, N]).
 * Uniforms (`matmulUniforms`): M, N, K, then the batch shape and the per-batch-axis element strides of A and B.
 */
export function matmulKernel(o: MatmulOptions): KernelSource {
  return memoKernel(`matmulKernel ${JSON.stringify([o])}`, () => buildMatmulKernel(o));
}

function buildMatmulKernel(o: MatmulOptions): KernelSource {
  const { tm, tn, tk, rm, rn } = o.tiles;
  checkTiles(o.tiles);
  const wx = tn / rn;
  const wy = tm / rm;
  const threads = wx * wy;
  const savePre = o.gelu === 'out+pre';
  const bind = (name: string, vec: boolean): BindingDecl => ({ name, type: vec ? 'vec4f' : 'f32' });
  const decl: KernelDecl = {
    uniforms: MATMUL_UNIFORMS,
    outputs: [bind('out', o.vecC), ...(savePre ? [bind('pre', o.vecC)] : []), ...(o.rowSums ? [bind('rsum', false)] : [])],
    inputs: [bind('a', o.vecA), bind('b', o.vecB), ...(o.bias ? [bind('bias', o.vecC)] : []), ...(o.residual ? [bind('res', o.vecC)] : [])],
  };

  // A (staged tile or global memory) as vec4s: per step of 4 k, either row i's 4 k (a<i>) or, A being
  // [K, M], 4 rows' k + kk (a<kk>_<g>); then A(i, kk) names one scalar.
  const staged = tk > 0;
  const row = (i: number): string => `m0 + ty * ${rm}u + ${i}u`;
  const loads: string[] = [];
  let aAt: (i: number, kk: number) => string;
  const sg = o.tiles.sg ?? 0;
  if (sg > 0 && !o.transA) {
    // Lane l loads row m0 + l (+ sg, + 2 sg, ...) at k .. k+3; row i's value comes from lane i % sg.
    for (let h = 0; h < Math.ceil(rm / sg); h++) {
      const r = `m0 + tx + ${h * sg}u`;
      loads.push(`let av${h} = ${load4('a', o.vecA, `offA + (${r}) * u.K + k`, (c) => [`${r} < u.M`, `k + ${c}u < u.K`])};`);
    }
    aAt = (i, kk) => `subgroupBroadcast(av${Math.floor(i / sg)}[${kk}], ${i % sg}u)`;
  } else if (sg > 0) {
    // A is [K, M]: a vec4 runs along 4 rows, so a "sheet" of sg lanes covers R rows at sg / (R / 4)
    // values of k; ceil(4 / that) sheets cover k .. k+3.
    const R = Math.min(rm, 4 * sg);
    const lanesPerK = R / 4;
    const kPerSheet = sg / lanesPerK;
    const sheets = Math.ceil(4 / kPerSheet);
    for (let rb = 0; rb < rm / R; rb++) {
      for (let sh = 0; sh < sheets; sh++) {
        const kx = `k + ${sh * kPerSheet}u + tx / ${lanesPerK}u`;
        const r = `m0 + ${rb * R}u + (tx % ${lanesPerK}u) * 4u`;
        loads.push(`let av${rb}_${sh} = ${load4('a', o.vecA, `offA + (${kx}) * u.M + ${r}`, (c) => [`${kx} < u.K`, `${r} + ${c}u < u.M`])};`);
      }
    }
    aAt = (i, kk) => {
      const ii = i % R;
      const lane = (kk % kPerSheet) * lanesPerK + (ii >> 2);
      return `subgroupBroadcast(av${Math.floor(i / R)}_${Math.floor(kk / kPerSheet)}[${ii & 3}], ${lane}u)`;
    };
  } else if (o.transA) {
    for (const kk of QUAD) {
      for (let g = 0; g < rm / 4; g++) {
        const at = staged
          ? `tA[(kq * 4u + ${kk}u) * ${tm / 4}u + ty * ${rm / 4}u + ${g}u]`
          : load4('a', o.vecA, `offA + (k + ${kk}u) * u.M + ${row(4 * g)}`, (c) => [`k + ${kk}u < u.K`, `${row(4 * g)} + ${c}u < u.M`]);
        loads.push(`let a${kk}_${g} = ${at};`);
      }
    }
    aAt = (i, kk) => `a${kk}_${Math.floor(i / 4)}[${i % 4}]`;
  } else {
    for (let i = 0; i < rm; i++) {
      const at = staged ? `tA[(ty * ${rm}u + ${i}u) * ${tk / 4}u + kq]` : load4('a', o.vecA, `offA + (${row(i)}) * u.K + k`, (c) => [`${row(i)} < u.M`, `k + ${c}u < u.K`]);
      loads.push(`let a${i} = ${at};`);
    }
    aAt = (i, kk) => `a${i}[${kk}]`;
  }

  // Staging copies the A tile as vec4s along A's contiguous axis: tm x tk/4, or tk x tm/4 when A is [K, M].
  const [outer, inner, rows, cols, row0, col0] = o.transA ? [tk, tm, 'u.K', 'u.M', 'k0', 'm0'] : [tm, tk, 'u.M', 'u.K', 'm0', 'k0'];
  const items = (outer * inner) / 4;
  const stage = each(
    staged ? Math.ceil(items / threads) : 0,
    (p) => `${(p + 1) * threads > items ? `if (lid + ${p * threads}u < ${items}u) ` : ''}{
      let l = lid + ${p * threads}u;
      let gr = ${row0} + l / ${inner / 4}u;
      let gc = ${col0} + (l % ${inner / 4}u) * 4u;
      tA[l] = ${load4('a', o.vecA, `offA + gr * ${cols} + gc`, (c) => [`gr < ${rows}`, `gc + ${c}u < ${cols}`])};
    }`,
    '\n    ',
  );

  // B(k .. k+3, column group q) as four vec4s over this thread's columns n0 + tx * 4 + q * wx * 4 + 0..3.
  const groups = rn / 4;
  const colOf = (q: number): string => `n0 + tx * 4u + ${q * wx * 4}u`;
  let bAt: (kk: number, q: number) => string;
  if (o.transB) {
    // B is [N, K]: a vec4 runs along k, one per column.
    for (let q = 0; q < groups; q++) {
      for (const c of QUAD) {
        const n = `${colOf(q)} + ${c}u`;
        loads.push(`let b${q}_${c} = ${load4('b', o.vecB, `offB + (${n}) * u.K + k`, (j) => [`${n} < u.N`, `k + ${j}u < u.K`])};`);
      }
    }
    // The 4 x 4 transpose once per step (named), not inside every row's product: a quarter less WGSL for
    // Tint and lavapipe to compile (the nt variants were the largest kernels; bench/NOTES.md, "Cold start").
    for (let q = 0; q < groups; q++) for (const kk of QUAD) loads.push(`let bt${q}_${kk} = vec4f(${QUAD.map((c) => `b${q}_${c}[${kk}]`).join(', ')});`);
    bAt = (kk, q) => `bt${q}_${kk}`;
  } else {
    // B is [K, N]: a vec4 runs along n, one per k.
    for (const kk of QUAD) {
      for (let q = 0; q < groups; q++) {
        const n = colOf(q);
        loads.push(`let b${kk}_${q} = ${load4('b', o.vecB, `offB + (k + ${kk}u) * u.N + ${n}`, (c) => [`k + ${kk}u < u.K`, `${n} + ${c}u < u.N`])};`);
      }
    }
    bAt = (kk, q) => `b${kk}_${q}`;
  }
  const fmas: string[] = [];
  if (o.rowSums) {
    // Each A value named once, for the products and the row sum alike.
    for (let i = 0; i < rm; i++) for (const kk of QUAD) fmas.push(`let ar${i}_${kk} = ${aAt(i, kk)};`);
    for (let i = 0; i < rm; i++) fmas.push(`rs${i} += (ar${i}_0 + ar${i}_1) + (ar${i}_2 + ar${i}_3);`);
  }
  const aVal = (i: number, kk: number): string => (o.rowSums ? `ar${i}_${kk}` : aAt(i, kk));
  for (let i = 0; i < rm; i++) {
    for (let q = 0; q < groups; q++) {
      fmas.push(`c${i}_${q} = ${QUAD.reduce((acc, kk) => `fma(vec4f(${aVal(i, kk)}), ${bAt(kk, q)}, ${acc})`, `c${i}_${q}`)};`);
    }
  }
  // The thread at column 0 of the first column tile writes its rows' sums.
  const rowSumStores = o.rowSums
    ? `if (wid.x == 0u && tx == 0u) {
    ${each(rm, (i) => `if (${row(i)} < u.M) { rsum[${row(i)}] = rs${i}; }`, '\n    ')}
  }`
    : '';

  const resAt = o.vecC ? 'res[at / 4u]' : `vec4f(${QUAD.map((c) => `res[at + min(${c}u, u.N - 1u - col)]`).join(', ')})`;
  const store = (name: string, value: string): string =>
    o.vecC ? `${name}[at / 4u] = ${value};` : QUAD.map((c) => `if (col + ${c}u < u.N) { ${name}[at + ${c}u] = ${value}[${c}]; }`).join(' ');
  // The bias of this thread's columns, loaded once before the rows (it was loaded per row: 32 x the
  // lane loads, and 1.7 s more LLVM time per variant on lavapipe's first dispatch; bench/NOTES.md).
  const biasAt = (col: string): string => (o.vecC ? `bias[min(${col}, u.N - 1u) / 4u]` : `vec4f(${QUAD.map((c) => `bias[min(${col} + ${c}u, u.N - 1u)]`).join(', ')})`);
  const biasLoads = o.bias ? each(groups, (q) => `let bias${q} = ${biasAt(colOf(q))};`, '\n  ') : '';
  const epilogue = each(
    rm,
    (i) =>
      each(
        groups,
        (q) => `{ let row = ${row(i)}; let col = ${colOf(q)};
    if (row < u.M && col < u.N) {
      let at = offC + row * u.N + col;
      var v = c${i}_${q};${o.bias ? ` v += bias${q};` : ''}${savePre ? ` ${store('pre', 'v')}` : ''}${o.gelu !== 'none' ? ` v = vec4f(${QUAD.map((c) => `gelu_(v[${c}])`).join(', ')});` : ''}${o.residual ? ` v = ${resAt} + v;` : ''}
      ${store('out', 'v')}
    } }`,
        '\n  ',
      ),
    '\n  ',
  );

  const step = [...loads, ...fmas].join('\n      ');
  const code = `${sg > 0 ? 'enable subgroups;' : ''}
${o.gelu !== 'none' ? MATH : ''}
${staged ? `var<workgroup> tA: array<vec4f, ${items}>;` : ''}

@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tx = lid3.x;
  let ty = ${wy === 1 ? '0u' : 'lid3.y'};
  let m0 = wid.y * ${tm}u;
  let n0 = wid.x * ${tn}u;
  // Batch index -> element offsets of this batch's A and B (stride 0 on a broadcast axis).
  var z = wid.z;
  var offA = 0u;
  var offB = 0u;
  for (var d = 3; d >= 0; d--) {
    let i = z % u.batch[d];
    z = z / u.batch[d];
    offA += i * u.sa[d];
    offB += i * u.sb[d];
  }
  let offC = wid.z * u.M * u.N;
  ${each(rm, (i) => each(groups, (q) => `var c${i}_${q} = vec4f(0.0);`, ' '), '\n  ')}
  ${o.rowSums ? each(rm, (i) => `var rs${i} = 0.0;`, ' ') : ''}
  ${
    staged
      ? `for (var k0 = 0u; k0 < u.K; k0 += ${tk}u) {
    ${stage}
    workgroupBarrier();
    for (var kq = 0u; kq < ${tk / 4}u; kq++) {
      let k = k0 + kq * 4u;
      ${step}
    }
    workgroupBarrier();
  }`
      : `for (var k = 0u; k < u.K; k += 4u) {
    ${step}
  }`
  }
  ${biasLoads}
  ${epilogue}
  ${rowSumStores}
}`;
  const t = o.tiles;
  const flags = `${o.transA ? 't' : 'n'}${o.transB ? 't' : 'n'}_v${+o.vecA}${+o.vecB}${+o.vecC}`;
  const key = `matmul_${flags}_${o.bias ? 'bias' : 'nobias'}${o.residual ? '_res' : ''}${o.rowSums ? '_rsum' : ''}_gelu-${o.gelu}_${t.tm}x${t.tn}x${t.tk}_${t.rm}x${t.rn}${sg > 0 ? `_sg${sg}` : ''}`;
  return defineKernel(key, decl, code);
}

const MATMUL_UNIFORMS: KernelDecl['uniforms'] = [
  ['M', 'u32'],
  ['N', 'u32'],
  ['K', 'u32'],
  ['batch', 'vec4u'],
  ['sa', 'vec4u'],
  ['sb', 'vec4u'],
];

/** Uniform block of `matmulKernel`: batch shape and strides padded at the front to MATMUL_MAX_BATCH_RANK axes. */
export function matmulUniforms(M: number, N: number, K: number, batch: readonly number[], sa: readonly number[], sb: readonly number[]): UniformValues {
  const pad = MATMUL_MAX_BATCH_RANK - batch.length;
  if (pad < 0) throw new Error(`internal: matmul batch of rank ${batch.length} exceeds ${MATMUL_MAX_BATCH_RANK}`);
  const front = (v: readonly number[], fill: number): number[] => [...Array<number>(pad).fill(fill), ...v];
  return { M, N, K, batch: front(batch, 1), sa: front(sa, 0), sb: front(sb, 0) };
}

/** Workgroup grid: tiles of N along x, tiles of M along y, one batch matrix per z. */
export function matmulGroups(label: string, M: number, N: number, batch: number, tiles: MatmulTiles): [number, number, number] {
  const groups: [number, number, number] = [Math.ceil(N / tiles.tn), Math.ceil(M / tiles.tm), batch];
  const names = ['N', 'M', 'batch'];
  groups.forEach((g, i) => {
    if (g > MAX_GROUPS) {
      throw new Error(`${label}: ${names[i]} needs ${g} workgroups, more than the ${MAX_GROUPS} a dispatch allows per dimension`);
    }
  });
  return groups;
}
