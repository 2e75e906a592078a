// Image files for tests of the commands that read images.
import sharp from 'sharp';
import { Rng } from '../../engine/index.js';

/** Write a w x h RGB PNG (or whatever `file`'s extension says) of seeded random pixels. */
export async function randomImage(file: string, w: number, h: number, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const px = Buffer.from(Array.from({ length: w * h * 3 }, () => rng.int(0, 255)));
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).toFile(file);
}
