// A synthetic few-shot dataset drawn in code from a seed, so training runs on a machine with no
// data: each class is a glyph of a few random strokes, curves and dots; each image redraws it with
// jittered control points, an affine warp, its own stroke width, colours and pixel noise.
import type { Rng } from '../../engine/rng.js';
import { checkIndex, type ImageDataset, type RgbImage } from './dataset.js';
import { keyedRng, STREAM } from './seed.js';

export type SyntheticSplit = 'train' | 'val' | 'test' | 'all';

export interface SyntheticOptions {
  seed?: number;
  split?: SyntheticSplit;
  /** Classes in each split; default 64 / 16 / 20 (miniImageNet's shape). */
  classes?: { train: number; val: number; test: number };
  imagesPerClass?: number;
  /** Image side in pixels; default 32. */
  size?: number;
}

type Point = [number, number];

/** A glyph: polylines (curves already sampled) and filled dots, in the unit square. */
interface Glyph {
  lines: Point[][];
  dots: { at: Point; r: number }[];
}

function point(rng: Rng): Point {
  return [rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85)];
}

/** The class's glyph: 2 to 4 strokes, each a line, a quadratic curve, an arc or a dot. */
function makeGlyph(rng: Rng): Glyph {
  const glyph: Glyph = { lines: [], dots: [] };
  const strokes = rng.int(2, 4);
  for (let s = 0; s < strokes; s++) {
    const kind = rng.int(0, 9);
    if (kind < 3) glyph.lines.push([point(rng), point(rng)]);
    else if (kind < 6) {
      const [a, b, c] = [point(rng), point(rng), point(rng)];
      glyph.lines.push(sampleCurve((t) => [(1 - t) ** 2 * a[0] + 2 * (1 - t) * t * b[0] + t * t * c[0], (1 - t) ** 2 * a[1] + 2 * (1 - t) * t * b[1] + t * t * c[1]]));
    } else if (kind < 9) {
      const c = [rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)];
      const r = rng.uniform(0.12, 0.3);
      const start = rng.uniform(0, 2 * Math.PI);
      const sweep = rng.uniform(0.6, 1.6) * Math.PI;
      glyph.lines.push(sampleCurve((t) => [c[0] + r * Math.cos(start + sweep * t), c[1] + r * Math.sin(start + sweep * t)]));
    } else glyph.dots.push({ at: point(rng), r: rng.uniform(0.04, 0.08) });
  }
  return glyph;
}

function sampleCurve(f: (t: number) => Point, segments = 10): Point[] {
  return Array.from({ length: segments + 1 }, (_, i) => f(i / segments));
}

/** Squared distance from (px, py) to the nearest of the segments [ax, ay, bx, by, ...]. */
function dist2ToSegments(px: number, py: number, seg: Float64Array): number {
  let best = Infinity;
  for (let k = 0; k < seg.length; k += 4) {
    const ax = seg[k];
    const ay = seg[k + 1];
    const dx = seg[k + 2] - ax;
    const dy = seg[k + 3] - ay;
    const len2 = dx * dx + dy * dy;
    const t = len2 === 0 ? 0 : Math.min(1, Math.max(0, ((px - ax) * dx + (py - ay) * dy) / len2));
    const ex = px - ax - t * dx;
    const ey = py - ay - t * dy;
    best = Math.min(best, ex * ex + ey * ey);
  }
  return best;
}

/** A bright colour of random hue (value and saturation drawn too). */
function brightColour(rng: Rng): [number, number, number] {
  const h = rng.random() * 6;
  const s = rng.uniform(0, 0.7);
  const v = rng.uniform(0.7, 1);
  const f = h - Math.floor(h);
  const vals = [v, v * (1 - s * f), v * (1 - s), v * (1 - s), v * (1 - s * (1 - f)), v];
  const i = Math.floor(h);
  return [vals[i % 6], vals[(i + 4) % 6], vals[(i + 2) % 6]];
}

/** One drawing of a glyph: jittered, warped, coloured and noisy. */
function renderGlyph(glyph: Glyph, size: number, rng: Rng): RgbImage {
  const jitter = (p: Point): Point => [p[0] + rng.uniform(-0.04, 0.04), p[1] + rng.uniform(-0.04, 0.04)];
  const angle = rng.uniform(-0.25, 0.25);
  const scale = rng.uniform(0.85, 1.1);
  const shear = rng.uniform(-0.15, 0.15);
  const tx = rng.uniform(-0.08, 0.08);
  const ty = rng.uniform(-0.08, 0.08);
  const cos = Math.cos(angle) * scale;
  const sin = Math.sin(angle) * scale;
  // warp about the centre, then to pixel units
  const warp = (p: Point): Point => {
    const x = p[0] - 0.5 + shear * (p[1] - 0.5);
    const y = p[1] - 0.5;
    return [(cos * x - sin * y + 0.5 + tx) * size, (sin * x + cos * y + 0.5 + ty) * size];
  };
  const segments: number[] = [];
  for (const l of glyph.lines) {
    const shift = jitter([0, 0]);
    const pts = l.map((p) => warp(jitter([p[0] + shift[0], p[1] + shift[1]])));
    for (let k = 1; k < pts.length; k++) segments.push(...pts[k - 1], ...pts[k]);
  }
  const seg = Float64Array.from(segments);
  const dots = glyph.dots.map((d) => ({ at: warp(jitter(d.at)), r: d.r * scale * size }));
  const halfWidth = (rng.uniform(0.05, 0.09) * size) / 2;
  const fg = brightColour(rng);
  const bg = [rng.uniform(0, 0.3), rng.uniform(0, 0.3), rng.uniform(0, 0.3)];
  const noise = rng.uniform(0.02, 0.08);
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const px = x + 0.5;
      const py = y + 0.5;
      let d = Math.sqrt(dist2ToSegments(px, py, seg)) - halfWidth;
      for (const dot of dots) d = Math.min(d, Math.sqrt((px - dot.at[0]) ** 2 + (py - dot.at[1]) ** 2) - dot.r);
      // coverage of a pixel by the shape, antialiased over one pixel
      const alpha = Math.min(1, Math.max(0, 0.5 - d));
      for (let c = 0; c < 3; c++) {
        const v = bg[c] * (1 - alpha) + fg[c] * alpha + rng.normal(0, noise);
        data[(y * size + x) * 3 + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
      }
    }
  }
  return { width: size, height: size, data };
}

/** The synthetic glyph dataset (one split of it); images are drawn on first load and cached. */
export class SyntheticGlyphs implements ImageDataset {
  readonly name: string;
  readonly classes: readonly string[];
  readonly size: number;
  readonly imagesPerClass: number;
  readonly imageSize: number;
  private readonly seed: number;
  /** Global class id of each label (names and drawings depend on it, not on the split). */
  private readonly classIds: number[];
  private readonly glyphs = new Map<number, Glyph>();
  private readonly cache: (RgbImage | undefined)[];

  constructor(opts: SyntheticOptions = {}) {
    const counts = opts.classes ?? { train: 64, val: 16, test: 20 };
    const split = opts.split ?? 'train';
    this.seed = opts.seed ?? 0;
    this.imagesPerClass = opts.imagesPerClass ?? 60;
    this.imageSize = opts.size ?? 32;
    const first = { train: 0, val: counts.train, test: counts.train + counts.val, all: 0 }[split];
    const count = split === 'all' ? counts.train + counts.val + counts.test : counts[split];
    this.classIds = Array.from({ length: count }, (_, i) => first + i);
    this.classes = this.classIds.map((c) => `glyph${String(c).padStart(3, '0')}`);
    this.name = `synthetic-${split}`;
    this.size = count * this.imagesPerClass;
    this.cache = new Array(this.size);
  }

  label(i: number): number {
    return Math.floor(checkIndex(this, i) / this.imagesPerClass);
  }

  describe(i: number): string {
    return `${this.name}[${i}] (${this.classes[this.label(i)]}, drawing ${i % this.imagesPerClass})`;
  }

  load(i: number): Promise<RgbImage> {
    return Promise.resolve(this.image(i));
  }

  /** The image, drawn now if not yet cached (synchronous: it is pure computation). */
  image(i: number): RgbImage {
    const cached = this.cache[checkIndex(this, i)];
    if (cached) return cached;
    const id = this.classIds[this.label(i)];
    let glyph = this.glyphs.get(id);
    if (!glyph) {
      glyph = makeGlyph(keyedRng(this.seed, STREAM.synthetic, 0, id));
      this.glyphs.set(id, glyph);
    }
    const img = renderGlyph(glyph, this.imageSize, keyedRng(this.seed, STREAM.synthetic, 1, id, i % this.imagesPerClass));
    this.cache[i] = img;
    return img;
  }
}
