// The two data movements of a 2-D convolution computed as a matmul (conv2d in engine/ops/conv.ts):
// `unfold` gathers every output position's receptive field into one row, [B, OH·OW, C·KH·KW] (zero where
// the window hangs over the padding), and `fold`, its adjoint, sums those rows' gradients back onto the
// input pixels. fold is a gather too (each input pixel visits the at most KH·KW windows that cover it),
// so it needs no atomics and adds in a fixed order: the gradient is deterministic.
import { defineKernel, entry1d, linearIndex, type KernelDecl, type KernelSource, memoKernel } from './kernel.js';

const GEOMETRY = [
  ['n', 'u32'],
  ['C', 'u32'],
  ['H', 'u32'],
  ['W', 'u32'],
  ['OH', 'u32'],
  ['OW', 'u32'],
  ['KH', 'u32'],
  ['KW', 'u32'],
  ['stride', 'u32'],
  ['pad', 'u32'],
] as const;

/** rows[b, oh·OW + ow, (c·KH + i)·KW + j] = x[b, c, oh·stride - pad + i, ow·stride - pad + j], 0 outside. One thread per row element. */
export function unfoldKernel(): KernelSource {
  return memoKernel(`unfoldKernel ${JSON.stringify([])}`, () => buildUnfoldKernel());
}

function buildUnfoldKernel(): KernelSource {
  const decl: KernelDecl = { uniforms: GEOMETRY, outputs: [{ name: 'rows', type: 'f32' }], inputs: [{ name: 'x', type: 'f32' }] };
  return defineKernel(
    'conv_unfold',
    decl,
    `${entry1d()} {
  let e = ${linearIndex()};
  if (e >= u.n) { return; }
  let K = u.C * u.KH * u.KW;
  let col = e % K;
  let row = e / K;
  let l = row % (u.OH * u.OW);
  let b = row / (u.OH * u.OW);
  let j = col % u.KW;
  let i = (col / u.KW) % u.KH;
  let c = col / (u.KW * u.KH);
  // Signed: a window over the top or left padding starts above or left of the image.
  let y = i32((l / u.OW) * u.stride + i) - i32(u.pad);
  let xx = i32((l % u.OW) * u.stride + j) - i32(u.pad);
  var v = 0.0;
  if (y >= 0 && xx >= 0 && u32(y) < u.H && u32(xx) < u.W) {
    v = x[((b * u.C + c) * u.H + u32(y)) * u.W + u32(xx)];
  }
  rows[e] = v;
}`,
  );
}

/** dx[b, c, y, x] = sum over the windows (oh, ow, i, j) that read x[b, c, y, x] of drows[b, oh·OW + ow, (c·KH + i)·KW + j]. One thread per input pixel. */
export function foldKernel(): KernelSource {
  return memoKernel(`foldKernel ${JSON.stringify([])}`, () => buildFoldKernel());
}

function buildFoldKernel(): KernelSource {
  const decl: KernelDecl = { uniforms: GEOMETRY, outputs: [{ name: 'dx', type: 'f32' }], inputs: [{ name: 'drows', type: 'f32' }] };
  return defineKernel(
    'conv_fold',
    decl,
    `${entry1d()} {
  let e = ${linearIndex()};
  if (e >= u.n) { return; }
  let xx = e % u.W;
  let y = (e / u.W) % u.H;
  let c = (e / (u.W * u.H)) % u.C;
  let b = e / (u.W * u.H * u.C);
  let K = u.C * u.KH * u.KW;
  var s = 0.0;
  for (var i = 0u; i < u.KH; i++) {
    // The window row oh reads input row y at kernel row i when oh·stride + i = y + pad.
    let ty = i32(y + u.pad) - i32(i);
    if (ty < 0 || u32(ty) % u.stride != 0u || u32(ty) / u.stride >= u.OH) { continue; }
    let oh = u32(ty) / u.stride;
    for (var j = 0u; j < u.KW; j++) {
      let tx = i32(xx + u.pad) - i32(j);
      if (tx < 0 || u32(tx) % u.stride != 0u || u32(tx) / u.stride >= u.OW) { continue; }
      let ow = u32(tx) / u.stride;
      s += drows[(b * u.OH * u.OW + oh * u.OW + ow) * K + (c * u.KH + i) * u.KW + j];
    }
  }
  dx[e] = s;
}`,
  );
}
