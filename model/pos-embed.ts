// Position-embedding resizing (docs/algorithm.md §1.5): PyTorch's bicubic interpolate(scale_factor=(g + 0.1) / g0,
// align_corners=False), written as a fixed linear map of the grid so that it is one matmul on the GPU
// and its gradient flows back to pos_embed.

const A = -0.75;

function cubic(x: number): number {
  const t = Math.abs(x);
  if (t <= 1) return (A + 2) * t ** 3 - (A + 3) * t ** 2 + 1;
  if (t < 2) return A * t ** 3 - 5 * A * t ** 2 + 8 * A * t - 4 * A;
  return 0;
}

/** The [out, g0] matrix resizing one axis from g0 to `out` points with scale factor (out + 0.1) / g0. */
export function bicubicAxis(g0: number, out: number): Float64Array {
  const sigma = (out + 0.1) / g0;
  const w = new Float64Array(out * g0);
  for (let o = 0; o < out; o++) {
    // The sampling step uses the passed scale factor, not g0 / out (as PyTorch does).
    const src = (o + 0.5) / sigma - 0.5;
    const i0 = Math.floor(src);
    const t = src - i0;
    const taps = [cubic(1 + t), cubic(t), cubic(1 - t), cubic(2 - t)];
    for (let k = 0; k < 4; k++) {
      const i = Math.min(Math.max(i0 - 1 + k, 0), g0 - 1);
      w[o * g0 + i] += taps[k];
    }
  }
  return w;
}

/** The [gh * gw, g0 * g0] matrix of the separable 2-D resize of a g0 x g0 grid to gh x gw. */
export function bicubicGrid(g0: number, gh: number, gw: number): Float32Array {
  const wy = bicubicAxis(g0, gh);
  const wx = bicubicAxis(g0, gw);
  const m = new Float32Array(gh * gw * g0 * g0);
  for (let oy = 0; oy < gh; oy++)
    for (let ox = 0; ox < gw; ox++)
      for (let iy = 0; iy < g0; iy++) {
        const a = wy[oy * g0 + iy];
        if (a === 0) continue;
        for (let ix = 0; ix < g0; ix++) m[(oy * gw + ox) * g0 * g0 + iy * g0 + ix] = a * wx[ox * g0 + ix];
      }
  return m;
}
