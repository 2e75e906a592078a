// Float64 reference implementations of the image operations of train/data/augment.ts, written
// for clarity, not speed: direct 2-D sums instead of separable passes, colorsys-style HSV.

/** PIL's bicubic kernel (a = -0.5), written from the Keys formula. */
export function keys(t: number, a = -0.5): number {
  const x = Math.abs(t);
  if (x <= 1) return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1;
  if (x < 2) return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a;
  return 0;
}

/**
 * Weight of every source pixel 0..inSize-1 for output `j` when the source interval
 * [start, start + len) is resized to `outSize` pixels: kernel stretched by the shrink factor,
 * normalised to sum 1.
 */
function weightsFor(inSize: number, start: number, len: number, outSize: number, j: number): number[] {
  const scale = len / outSize;
  const stretch = Math.max(scale, 1);
  const center = start + (j + 0.5) * scale;
  const w = Array.from({ length: inSize }, (_, x) => keys((x + 0.5 - center) / stretch));
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / total);
}

/**
 * Resize the box (x, y, w, h) of an 8-bit HWC RGB image to outW x outH and return the window
 * [wx, wx + ww) x [wy, wy + wh) of the result as CHW values in [0, 1] (clamped).
 */
export function resizeRef(
  src: Uint8Array,
  width: number,
  height: number,
  box: { x: number; y: number; w: number; h: number },
  outW: number,
  outH: number,
  win = { x: 0, y: 0, w: outW, h: outH },
): Float64Array {
  const out = new Float64Array(3 * win.w * win.h);
  for (let i = 0; i < win.h; i++) {
    const wy = weightsFor(height, box.y, box.h, outH, win.y + i);
    for (let j = 0; j < win.w; j++) {
      const wx = weightsFor(width, box.x, box.w, outW, win.x + j);
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let y = 0; y < height; y++) {
          if (wy[y] === 0) continue;
          for (let x = 0; x < width; x++) s += wy[y] * wx[x] * src[(y * width + x) * 3 + c];
        }
        out[c * win.w * win.h + i * win.w + j] = Math.min(1, Math.max(0, s / 255));
      }
    }
  }
  return out;
}

/** Python colorsys.rgb_to_hsv. */
export function rgbToHsv(r: number, g: number, b: number): [number, number, number] {
  const maxc = Math.max(r, g, b);
  const minc = Math.min(r, g, b);
  if (minc === maxc) return [0, 0, maxc];
  const s = (maxc - minc) / maxc;
  const rc = (maxc - r) / (maxc - minc);
  const gc = (maxc - g) / (maxc - minc);
  const bc = (maxc - b) / (maxc - minc);
  let h = r === maxc ? bc - gc : g === maxc ? 2 + rc - bc : 4 + gc - rc;
  h = (((h / 6) % 1) + 1) % 1;
  return [h, s, maxc];
}

/** Python colorsys.hsv_to_rgb. */
export function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  if (s === 0) return [v, v, v];
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  switch (((i % 6) + 6) % 6) {
    case 0:
      return [v, t, p];
    case 1:
      return [q, v, p];
    case 2:
      return [p, v, t];
    case 3:
      return [p, q, v];
    case 4:
      return [t, p, v];
    default:
      return [v, p, q];
  }
}

/** Gaussian blur of a CHW image of side `size`: direct 2-D sum, radius ceil(3 sigma), edges clamped. */
export function blurRef(x: ArrayLike<number>, size: number, sigma: number): Float64Array {
  const r = Math.ceil(3 * sigma);
  const g = (d: number) => Math.exp(-(d * d) / (2 * sigma * sigma));
  let norm = 0;
  for (let d = -r; d <= r; d++) norm += g(d);
  const clamp = (v: number) => Math.min(Math.max(v, 0), size - 1);
  const out = new Float64Array(3 * size * size);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < size; y++) {
      for (let xx = 0; xx < size; xx++) {
        let s = 0;
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) s += g(dy) * g(dx) * x[c * size * size + clamp(y + dy) * size + clamp(xx + dx)];
        }
        out[c * size * size + y * size + xx] = s / (norm * norm);
      }
    }
  }
  return out;
}

/**
 * Float64 reference of a bilinear warp: output pixel centres (u, v) of an S x S image map to source
 * pixels through x = ((m00·xn + m01·yn + tx + 1) / 2)·W − 0.5 (and y alike), xn = 2(u + 0.5)/S − 1;
 * samples outside the image are 0 (torch's grid_sample, zeros padding, align_corners = false).
 */
export function warpRef(
  img: { width: number; height: number; data: ArrayLike<number> },
  S: number,
  m: readonly [number, number, number, number],
  t: readonly [number, number],
): Float64Array {
  const { width: W, height: H, data } = img;
  const out = new Float64Array(3 * S * S);
  const at = (x: number, y: number, c: number): number => (x < 0 || y < 0 || x >= W || y >= H ? 0 : data[(y * W + x) * 3 + c] / 255);
  for (let v = 0; v < S; v++) {
    for (let u = 0; u < S; u++) {
      const xn = (2 * (u + 0.5)) / S - 1;
      const yn = (2 * (v + 0.5)) / S - 1;
      const sx = ((m[0] * xn + m[1] * yn + t[0] + 1) / 2) * W - 0.5;
      const sy = ((m[2] * xn + m[3] * yn + t[1] + 1) / 2) * H - 0.5;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      for (let c = 0; c < 3; c++) {
        out[c * S * S + v * S + u] = (1 - fy) * ((1 - fx) * at(x0, y0, c) + fx * at(x0 + 1, y0, c)) + fy * ((1 - fx) * at(x0, y0 + 1, c) + fx * at(x0 + 1, y0 + 1, c));
      }
    }
  }
  return out;
}
