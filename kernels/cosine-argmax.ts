// Cosine-similarity argmax for SMKD's patch matching: for each row of A [G, N, D], the index of the
// most cosine-similar row of B [G, M, D] in the same group, without writing the N x M similarities.
import { defineKernel, spillIndex, type KernelDecl, type KernelSource, memoKernel } from './kernel.js';

/** Rows of A per workgroup (and rows of B per inner tile): 16 x 16 threads, 4 x 4 pairs each. */
export const COSINE_TILE = 64;
const CHUNK = 16;
const WG = 256;
const NEG_MAX = '-3.4028234663852886e38';

/** out [G, N] (i32) from a [G, N, D] and b [G, M, D]. */
const COSINE: KernelDecl = {
  uniforms: [
    ['G', 'u32'],
    ['N', 'u32'],
    ['M', 'u32'],
    ['D', 'u32'],
  ],
  outputs: [{ name: 'out', type: 'i32' }],
  inputs: [
    { name: 'a', type: 'f32' },
    { name: 'b', type: 'f32' },
  ],
};

/**
 * A workgroup owns 64 rows of A in one group and sweeps B in tiles of 64 rows, feature chunks of
 * 16 staged in workgroup memory. Score of B row m: <a, b_m> / |b_m|, which orders the B rows as
 * the cosine does (|a| is a positive common factor); a zero B row scores 0 (cosine 0 by
 * definition), so a zero A row scores 0 everywhere and picks index 0. Each thread keeps the best of
 * its columns (ascending m, strict >), then the 16 threads of a row merge with ties going to the
 * lower index, so exact ties always resolve to the lowest index. A thread owns 4 consecutive rows
 * of A and of B, so it reads each from workgroup memory as one vec4 (1.8x faster on lavapipe).
 */
export function cosineArgmaxKernel(): KernelSource {
  return memoKernel(`cosineArgmaxKernel ${JSON.stringify([])}`, () => buildCosineArgmaxKernel());
}

function buildCosineArgmaxKernel(): KernelSource {
  const T = COSINE_TILE;
  const loads = (T * CHUNK) / WG;
  const code = `
var<workgroup> aTile: array<vec4f, ${(T * CHUNK) / 4}>;
var<workgroup> bTile: array<vec4f, ${(T * CHUNK) / 4}>;
var<workgroup> bestVal: array<f32, ${T * CHUNK}>;
var<workgroup> bestAt: array<u32, ${T * CHUNK}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = ${spillIndex('wid.y', 'wid.z')};
  if (g >= u.G) { return; }
  let tx = lid % 16u;
  let ty = lid / 16u;
  let n0 = wid.x * ${T}u;
  let aBase = g * u.N * u.D;
  let bBase = g * u.M * u.D;
  var best = vec4f(${NEG_MAX});
  var bestIdx = vec4u(u.M);
  for (var m0 = 0u; m0 < u.M; m0 += ${T}u) {
    var acc0 = vec4f(0.0);
    var acc1 = vec4f(0.0);
    var acc2 = vec4f(0.0);
    var acc3 = vec4f(0.0);
    var nb = vec4f(0.0);
    for (var d0 = 0u; d0 < u.D; d0 += ${CHUNK}u) {
      for (var q = 0u; q < ${loads}u; q++) {
        let e = lid + ${WG}u * q;
        let row = e / ${CHUNK}u;
        let k = e % ${CHUNK}u;
        var va = 0.0;
        if (n0 + row < u.N && d0 + k < u.D) { va = a[aBase + (n0 + row) * u.D + d0 + k]; }
        aTile[k * 16u + row / 4u][row % 4u] = va;
        var vb = 0.0;
        if (m0 + row < u.M && d0 + k < u.D) { vb = b[bBase + (m0 + row) * u.D + d0 + k]; }
        bTile[k * 16u + row / 4u][row % 4u] = vb;
      }
      workgroupBarrier();
      for (var k = 0u; k < ${CHUNK}u; k++) {
        let av = aTile[k * 16u + ty];
        let bv = bTile[k * 16u + tx];
        acc0 += av.x * bv;
        acc1 += av.y * bv;
        acc2 += av.z * bv;
        acc3 += av.w * bv;
        nb += bv * bv;
      }
      workgroupBarrier();
    }
    let inv = select(vec4f(0.0), 1.0 / sqrt(nb), nb > vec4f(0.0));
    for (var c = 0u; c < 4u; c++) {
      let m = m0 + tx * 4u + c;
      if (m < u.M) {
        let score = vec4f(acc0[c], acc1[c], acc2[c], acc3[c]) * inv[c];
        let better = score > best;
        best = select(best, score, better);
        bestIdx = select(bestIdx, vec4u(m), better);
      }
    }
  }
  for (var q = 0u; q < 4u; q++) {
    let slot = (ty * 4u + q) * 16u + tx;
    bestVal[slot] = best[q];
    bestAt[slot] = bestIdx[q];
  }
  workgroupBarrier();
  if (lid < ${T}u && n0 + lid < u.N) {
    var bv = ${NEG_MAX};
    var bi = u.M;
    for (var t = 0u; t < 16u; t++) {
      let v = bestVal[lid * 16u + t];
      let i = bestAt[lid * 16u + t];
      if (v > bv || (v == bv && i < bi)) {
        bv = v;
        bi = i;
      }
    }
    // Only NaN inputs leave no candidate; answer 0 rather than an out-of-range index.
    out[g * u.N + n0 + lid] = i32(select(bi, 0u, bi >= u.M));
  }
}`;
  return defineKernel('cosine_argmax', COSINE, code);
}

/**
 * out[r] = argmax over m of s[r, m] for rows of length M (strict >, ascending m, so ties go to the
 * lowest index); one thread per row. The second half of the large-shape cosine argmax, whose scores
 * come from the matmul kernel.
 */
export function rowArgmaxKernel(): KernelSource {
  return memoKernel(`rowArgmaxKernel ${JSON.stringify([])}`, () => buildRowArgmaxKernel());
}

function buildRowArgmaxKernel(): KernelSource {
  const code = `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= u.rows) { return; }
  var best = ${NEG_MAX};
  var at = 0u;
  let base = r * u.M;
  for (var m = 0u; m < u.M; m++) {
    let v = s[base + m];
    if (v > best) {
      best = v;
      at = m;
    }
  }
  out[r] = i32(at);
}`;
  const decl: KernelDecl = {
    uniforms: [
      ['rows', 'u32'],
      ['M', 'u32'],
    ],
    outputs: [{ name: 'out', type: 'i32' }],
    inputs: [{ name: 's', type: 'f32' }],
  };
  return defineKernel('row_argmax', decl, code);
}

/**
 * The whole cosine argmax with one thread per row of A: score(m) = <a, b_m> / |b_m| (0 for a zero
 * b_m), best by strict > in ascending m, as the tiled kernel. For software adapters at small sizes,
 * where the tiled kernel's 256-thread workgroups and barriers cost far more than the arithmetic
 * (SMKD's matching at the omniglot preset, G 64 N 8 M 4 D 64, was a fifth of a training step).
 */
export function cosineArgmaxRowsKernel(): KernelSource {
  return memoKernel(`cosineArgmaxRowsKernel ${JSON.stringify([])}`, () => buildCosineArgmaxRowsKernel());
}

function buildCosineArgmaxRowsKernel(): KernelSource {
  const code = `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= u.G * u.N) { return; }
  let g = r / u.N;
  let abase = r * u.D;
  var best = ${NEG_MAX};
  var at = 0u;
  for (var m = 0u; m < u.M; m++) {
    let bbase = (g * u.M + m) * u.D;
    var dot = 0.0;
    var sq = 0.0;
    for (var d = 0u; d < u.D; d++) {
      let bv = b[bbase + d];
      dot += a[abase + d] * bv;
      sq += bv * bv;
    }
    let score = select(0.0, dot / sqrt(sq), sq > 0.0);
    if (score > best) {
      best = score;
      at = m;
    }
  }
  out[r] = i32(at);
}`;
  return defineKernel('cosine_argmax_rows', COSINE, code);
}
