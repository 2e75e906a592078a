// `smkd show matches`: SMKD's patch matching made visible (docs/algorithm.md §5.5). Two images side by side, each
// patch of A joined to the patch of B whose backbone token is most cosine-similar (the engine's fused
// cosineArgmax on the final-norm patch tokens, as phase 2 matches them), lines coloured by similarity.
import { Rng } from '../../engine/index.js';
import { blockMask } from '../../model/masking.js';
import { loadBackbone, type Network } from '../backbone-file.js';
import type { RgbImage } from '../data/index.js';
import { loadSharp } from '../optional-deps.js';
import { checkOutputFile } from '../output-file.js';
import { checkpointPreparation, defaultScale, modelInput, readImages, seenPixels, upscale } from './input.js';
import { MATCH_GAP, matchLines, patchMatches, type MatchLayout, type MatchLine, type PatchMatches } from './patch-matches.js';

export { cosine, MATCH_GAP, matchLines, patchMatches, type MatchLayout, type MatchLine, type PatchMatch, type PatchMatches } from './patch-matches.js';

/** The overlay: patch-grid lines on both images, A's hidden patches darkened, the matches as arcs with end dots. */
export function matchOverlaySvg(width: number, height: number, lines: readonly MatchLine[], layout: MatchLayout, hidden?: Uint8Array): string {
  const cell = layout.patchSize * layout.scale;
  const offset = layout.size * layout.scale + MATCH_GAP;
  const parts: string[] = [];
  for (const x0 of [0, offset]) {
    for (let c = 1; c < layout.gw; c++)
      parts.push(`<line x1="${x0 + c * cell}" y1="0" x2="${x0 + c * cell}" y2="${layout.gh * cell}" stroke="#888" stroke-opacity="0.6" stroke-width="1"/>`);
    for (let r = 1; r < layout.gh; r++)
      parts.push(`<line x1="${x0}" y1="${r * cell}" x2="${x0 + layout.gw * cell}" y2="${r * cell}" stroke="#888" stroke-opacity="0.6" stroke-width="1"/>`);
  }
  hidden?.forEach((h, n) => {
    if (h) parts.push(`<rect x="${(n % layout.gw) * cell}" y="${Math.floor(n / layout.gw) * cell}" width="${cell}" height="${cell}" fill="#000" fill-opacity="0.35"/>`);
  });
  const dot = Math.max(2, Math.round(cell / 16));
  for (const l of lines) {
    // A shallow arc, not a straight line: matches along one row of patches would otherwise lie on top
    // of each other; a white halo keeps the dark end of the scale visible on dark images.
    const arc = `M${l.x1},${l.y1} Q${(l.x1 + l.x2) / 2},${(l.y1 + l.y2) / 2 - 0.15 * Math.abs(l.x2 - l.x1)} ${l.x2},${l.y2}`;
    parts.push(`<path d="${arc}" fill="none" stroke="#fff" stroke-opacity="0.8" stroke-width="4"/>`, `<path d="${arc}" fill="none" stroke="${l.colour}" stroke-width="2"/>`);
    for (const [x, y] of [
      [l.x1, l.y1],
      [l.x2, l.y2],
    ])
      parts.push(`<circle cx="${x}" cy="${y}" r="${dot}" fill="${l.colour}" stroke="#fff" stroke-width="1"/>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** A and B upscaled side by side, the overlay drawn on them (librsvg through sharp), as a PNG. */
export async function matchesPng(
  a: RgbImage,
  b: RgbImage,
  lines: readonly MatchLine[],
  layout: MatchLayout,
  hidden?: Uint8Array,
): Promise<{ png: Buffer; width: number; height: number }> {
  const [bigA, bigB] = [upscale(a, layout.scale), upscale(b, layout.scale)];
  const width = bigA.width + MATCH_GAP + bigB.width;
  const height = Math.max(bigA.height, bigB.height);
  const base = new Uint8Array(width * height * 3).fill(255);
  for (let y = 0; y < height; y++) {
    if (y < bigA.height) base.set(bigA.data.subarray(3 * y * bigA.width, 3 * (y + 1) * bigA.width), 3 * y * width);
    if (y < bigB.height) base.set(bigB.data.subarray(3 * y * bigB.width, 3 * (y + 1) * bigB.width), 3 * (y * width + bigA.width + MATCH_GAP));
  }
  const sharp = await loadSharp('show matches');
  const png = await sharp(Buffer.from(base.buffer), { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(matchOverlaySvg(width, height, lines, layout, hidden)), top: 0, left: 0 }])
    .removeAlpha()
    .png()
    .toBuffer();
  return { png, width, height };
}

export interface ShowMatchesOptions {
  checkpoint: string;
  imageA: string;
  imageB: string;
  output: string;
  scale?: number;
  /** Draw only A's patches a block mask of this ratio hides (docs/algorithm.md §4.3), drawn with `maskSeed`. */
  maskRatio?: number;
  maskSeed?: number;
  network?: Network;
  numHeads?: number;
}

export interface ShownMatches extends PatchMatches {
  lines: MatchLine[];
  hidden?: Uint8Array;
  width: number;
  height: number;
}

/** The command: the picture written to `o.output`; returns the matches and what was drawn. */
export async function showMatches(o: ShowMatchesOptions): Promise<ShownMatches> {
  checkOutputFile('show matches', '-o', o.output);
  if (o.maskRatio !== undefined && !(o.maskRatio > 0 && o.maskRatio < 1)) throw new Error(`show matches: --masked ${o.maskRatio}: the mask ratio must be between 0 and 1`);
  const loaded = await loadBackbone(o.checkpoint, { network: o.network, numHeads: o.numHeads });
  try {
    const prep = await checkpointPreparation(loaded);
    const input = modelInput(await readImages([o.imageA, o.imageB], prep, 'show matches'), prep);
    const m = await patchMatches(loaded.backbone, input, prep.size);
    const layout = { patchSize: loaded.config.patchSize, scale: o.scale ?? defaultScale(prep.size), size: prep.size, gh: m.gh, gw: m.gw };
    const hidden = o.maskRatio !== undefined ? blockMask(m.gh, m.gw, o.maskRatio, new Rng(o.maskSeed ?? 0)) : undefined;
    const lines = matchLines(m.matches, layout, hidden);
    const seen = [0, 1].map((k) => seenPixels(input, k, prep.size, prep.normalize));
    const picture = await matchesPng(seen[0], seen[1], lines, layout, hidden);
    await (await loadSharp('show matches'))(picture.png).toFile(o.output);
    return { ...m, lines, hidden, width: picture.width, height: picture.height };
  } finally {
    loaded.backbone.dispose();
  }
}
