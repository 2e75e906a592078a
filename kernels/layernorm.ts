// Normalisation over the last axis: LayerNorm (forward, dx, dweight/dbias) and L2 normalisation
// (forward, dx), as row kernels (see rowKernel in softmax.ts).
import { defineKernel, treeReduce, type KernelSource, memoKernel } from './kernel.js';
import { rowBindings, rowKernel, SUM2 } from './softmax.js';

/**
 * y = (x - mean) * rstd (* w + b when `affine`), rstd = 1 / sqrt(biased var + eps), and the
 * per-row mean and rstd for the backward. Two passes over the row (mean, then squared
 * deviations), so the variance never suffers the cancellation of E[x^2] - E[x]^2.
 */
export function layerNormKernel(affine: boolean, serial = false): KernelSource {
  return memoKernel(`layerNormKernel ${JSON.stringify([affine, serial])}`, () => buildLayerNormKernel(affine, serial));
}

function buildLayerNormKernel(affine: boolean, serial: boolean): KernelSource {
  return rowKernel(
    `layernorm_${affine ? 'affine' : 'plain'}`,
    rowBindings(['y', 'meanOut', 'rstdOut'], affine ? ['x', 'w', 'b'] : ['x']),
    SUM2,
    `
  var acc = 0.0;
  for (var i = lane; i < n; i += T) { acc += x[base + i]; }
  let mean = rowReduce(lid, lane, vec2f(acc, 0.0)).x / f32(u.d);
  var sq = 0.0;
  for (var i = lane; i < n; i += T) { let c = x[base + i] - mean; sq += c * c; }
  let rstd = inverseSqrt(rowReduce(lid, lane, vec2f(sq, 0.0)).x / f32(u.d) + u.p);
  for (var i = lane; i < n; i += T) { y[base + i] = (x[base + i] - mean) * rstd${affine ? ' * w[i] + b[i]' : ''}; }
  if (valid && lane == 0u) { meanOut[row] = mean; rstdOut[row] = rstd; }`,
    serial,
  );
}

/** dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), gw = g * w, from the saved mean and rstd. */
export function layerNormBackwardKernel(affine: boolean, addPrev = false, serial = false): KernelSource {
  return memoKernel(`layerNormBackwardKernel ${JSON.stringify([affine, addPrev, serial])}`, () => buildLayerNormBackwardKernel(affine, addPrev, serial));
}

/** With `addPrev`, a last input `prev` (x's gradient from elsewhere, same shape) is added: dx = prev + the above. */
function buildLayerNormBackwardKernel(affine: boolean, addPrev: boolean, serial: boolean): KernelSource {
  const gw = affine ? 'g[base + i] * w[i]' : 'g[base + i]';
  const inputs = [...(affine ? ['g', 'x', 'mean', 'rstd', 'w'] : ['g', 'x', 'mean', 'rstd']), ...(addPrev ? ['prev'] : [])];
  return rowKernel(
    `layernorm_backward_${affine ? 'affine' : 'plain'}${addPrev ? '_prev' : ''}`,
    rowBindings(['dx'], inputs),
    SUM2,
    `
  let r = min(row, u.rows - 1u);
  let mu = mean[r];
  let rs = rstd[r];
  var acc = vec2f(0.0);
  for (var i = lane; i < n; i += T) {
    let gw = ${gw};
    acc += vec2f(gw, gw * (x[base + i] - mu) * rs);
  }
  let s = rowReduce(lid, lane, acc) / f32(u.d);
  for (var i = lane; i < n; i += T) {
    let gw = ${gw};
    dx[base + i] = ${addPrev ? 'prev[base + i] + ' : ''}rs * (gw - s.x - (x[base + i] - mu) * rs * s.y);
  }`,
    serial,
  );
}

/** Columns per workgroup and lanes splitting the rows of `layerNormParamGradKernel`. */
export const PARAM_GRAD_COLS = 32;
export const PARAM_GRAD_LANES = 8;

/**
 * Partial sums over chunks of `chunk` rows of g * xhat (dweight) and g (dbias): workgroup (i, c)
 * writes columns 32i.. of row c of `dw` and `db` ([chunks, d]); the op sums the chunks after.
 * Splitting the rows keeps enough workgroups busy when d is small and the rows many.
 */
export function layerNormParamGradKernel(): KernelSource {
  return memoKernel(`layerNormParamGradKernel ${JSON.stringify([])}`, () => buildLayerNormParamGradKernel());
}

function buildLayerNormParamGradKernel(): KernelSource {
  const tile = PARAM_GRAD_COLS * PARAM_GRAD_LANES;
  const decl = {
    uniforms: [
      ['rows', 'u32'],
      ['d', 'u32'],
      ['chunk', 'u32'],
    ],
    outputs: ['dw', 'db'].map((name) => ({ name, type: 'f32' })),
    inputs: ['g', 'x', 'mean', 'rstd'].map((name) => ({ name, type: 'f32' })),
  } as const;
  const code = `
var<workgroup> part: array<vec2f, ${tile}>;

@compute @workgroup_size(${PARAM_GRAD_COLS}, ${PARAM_GRAD_LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let col = wid.x * ${PARAM_GRAD_COLS}u + lid.x;
  let r0 = wid.y * u.chunk;
  let r1 = min(u.rows, r0 + u.chunk);
  var acc = vec2f(0.0);
  if (col < u.d) {
    for (var r = r0 + lid.y; r < r1; r += ${PARAM_GRAD_LANES}u) {
      let j = r * u.d + col;
      acc += vec2f(g[j] * (x[j] - mean[r]) * rstd[r], g[j]);
    }
  }
  let slot = lid.y * ${PARAM_GRAD_COLS}u + lid.x;
  part[slot] = acc;
  workgroupBarrier();
  ${treeReduce({ buf: 'part', slot: 'slot', lane: 'lid.y', lanes: PARAM_GRAD_LANES, stride: PARAM_GRAD_COLS, combine: (a, b) => `${a} + ${b}` })}
  if (lid.y == 0u && col < u.d) {
    dw[wid.y * u.d + col] = part[lid.x].x;
    db[wid.y * u.d + col] = part[lid.x].y;
  }
}`;
  return defineKernel('layernorm_param_grad', decl, code);
}

/** y = x / max(||x||_2, eps) per row (torch.nn.functional.normalize). */
export function l2NormalizeKernel(serial = false): KernelSource {
  return memoKernel(`l2NormalizeKernel ${JSON.stringify([serial])}`, () => buildL2NormalizeKernel(serial));
}

function buildL2NormalizeKernel(serial: boolean): KernelSource {
  return rowKernel(
    'l2normalize',
    rowBindings(['y'], ['x']),
    SUM2,
    `
  var sq = 0.0;
  for (var i = lane; i < n; i += T) { let v = x[base + i]; sq += v * v; }
  let inv = 1.0 / max(sqrt(rowReduce(lid, lane, vec2f(sq, 0.0)).x), u.p);
  for (var i = lane; i < n; i += T) { y[base + i] = x[base + i] * inv; }`,
    serial,
  );
}

/**
 * dx of l2NormalizeKernel: g / nrm - x * <g, x> / nrm^3 where nrm >= eps; below eps the divisor is
 * the constant eps, so dx = g / eps (clamp_min passes no gradient to the norm there, as in PyTorch).
 */
export function l2NormalizeBackwardKernel(serial = false): KernelSource {
  return memoKernel(`l2NormalizeBackwardKernel ${JSON.stringify([serial])}`, () => buildL2NormalizeBackwardKernel(serial));
}

function buildL2NormalizeBackwardKernel(serial: boolean): KernelSource {
  return rowKernel(
    'l2normalize_backward',
    rowBindings(['dx'], ['g', 'x']),
    SUM2,
    `
  var acc = vec2f(0.0);
  for (var i = lane; i < n; i += T) { let v = x[base + i]; acc += vec2f(v * v, g[base + i] * v); }
  let s = rowReduce(lid, lane, acc);
  let nrm = sqrt(s.x);
  let inv = 1.0 / max(nrm, u.p);
  let k = select(0.0, s.y * inv * inv * inv, nrm >= u.p);
  for (var i = lane; i < n; i += T) { dx[base + i] = g[base + i] * inv - x[base + i] * k; }`,
    serial,
  );
}
