// Rotated copies of every training class as classes of their own: the Omniglot literature's class
// augmentation (Santoro et al. 2016; Vinyals et al. 2016, Matching Networks, the Omniglot section; Snell
// et al. 2017, Prototypical Networks, the same), which turns C characters into 4·C. A character turned by 90° is not the same
// character (unlike a photo of a dog), so it is a new class, not a view of the old one.
import { checkIndex, type ImageDataset, type RgbImage } from './dataset.js';

/** Quarter turns clockwise: 0, 90, 180, 270 degrees. */
export const QUARTER_TURNS = [0, 1, 2, 3] as const;

/** `img` turned clockwise by `turns` quarter turns (square or not; 3 channels, HWC). */
export function rotateQuarter(img: RgbImage, turns: number): RgbImage {
  const t = ((turns % 4) + 4) % 4;
  if (t === 0) return img;
  const { width: w, height: h, data } = img;
  const W = t === 2 ? w : h;
  const H = t === 2 ? h : w;
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      // The source pixel that lands at (x, y) after the turn.
      let sx: number;
      let sy: number;
      if (t === 1) [sx, sy] = [y, h - 1 - x];
      else if (t === 2) [sx, sy] = [w - 1 - x, h - 1 - y];
      else [sx, sy] = [w - 1 - y, x];
      const o = (y * W + x) * 3;
      const s = (sy * w + sx) * 3;
      out[o] = data[s];
      out[o + 1] = data[s + 1];
      out[o + 2] = data[s + 2];
    }
  }
  return { width: W, height: H, data: out };
}

/**
 * Every image of `ds` four times, turned by 0, 90, 180 and 270 degrees; the copy turned by k quarter
 * turns of class c has label k·C + c (the unturned classes keep their labels). Turned images are made
 * once, on first use, and kept.
 */
export class RotatedClassesDataset implements ImageDataset {
  readonly name: string;
  readonly classes: readonly string[];
  readonly size: number;
  private readonly cache = new Map<number, RgbImage>();

  constructor(private readonly base: ImageDataset) {
    this.name = `${base.name} (with rotated classes)`;
    this.classes = QUARTER_TURNS.flatMap((k) => base.classes.map((c) => (k === 0 ? c : `${c} (turned ${90 * k}°)`)));
    this.size = 4 * base.size;
  }

  label(i: number): number {
    checkIndex(this, i);
    return Math.floor(i / this.base.size) * this.base.classes.length + this.base.label(i % this.base.size);
  }

  async load(i: number): Promise<RgbImage> {
    checkIndex(this, i);
    const turns = Math.floor(i / this.base.size);
    if (turns === 0) return this.base.load(i);
    const hit = this.cache.get(i);
    if (hit) return hit;
    const img = rotateQuarter(await this.base.load(i % this.base.size), turns);
    this.cache.set(i, img);
    return img;
  }

  describe(i: number): string {
    checkIndex(this, i);
    const turns = Math.floor(i / this.base.size);
    const d = this.base.describe(i % this.base.size);
    return turns === 0 ? d : `${d}, turned ${90 * turns}°`;
  }
}
