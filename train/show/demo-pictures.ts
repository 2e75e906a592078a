// The demo's pictures of its trained model, made by the same functions as `smkd show` and `smkd plot`
// (so the README's commands on runs/demo/ give the same files): a few test images written out as PNGs,
// their attention, one match between two images of a test class, the test-class map, the curves.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ImageDataset } from '../data/index.js';
import { parseMetrics, runCurvesSvg } from '../plot.js';
import { showAttention } from './attention.js';
import { showEmbedding } from './embedding.js';
import { writePng } from './input.js';
import { showMatches } from './matches.js';

/** The paths the demo's pictures are written to under its folder. */
export interface DemoPictures {
  /** The test images the pictures use, as PNG files (images/). */
  images: string[];
  attention: string[];
  matches: string;
  embedding: string;
  curves: string;
}

/** Dataset indices of the first two images of class `label`. */
function firstOfClass(ds: ImageDataset, label: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ds.size && out.length < count; i++) if (ds.label(i) === label) out.push(i);
  return out;
}

/**
 * Pictures of the teacher of run `checkpoint` (a run directory) on `test` (its held-out split) into
 * `base`: the first image of four classes spread over the split (attention), the first two of the
 * first class (matches), the split's map, and the curves of `runs` (run directories).
 */
export async function demoPictures(base: string, checkpoint: string, test: ImageDataset, runs: readonly string[]): Promise<DemoPictures> {
  const imageDir = path.join(base, 'images');
  const attentionDir = path.join(base, 'attention');
  await mkdir(imageDir, { recursive: true });
  await mkdir(attentionDir, { recursive: true });
  const C = test.classes.length;
  const picks = [...new Set([0, 1, 2, 3].map((k) => Math.floor((k * C) / 4)))];
  const pair = firstOfClass(test, 0, 2);
  const indices = [...new Set([...pair, ...picks.slice(1).map((l) => firstOfClass(test, l, 1)[0])])];
  const images = await Promise.all(
    indices.map(async (i) => {
      const file = path.join(imageDir, `${test.classes[test.label(i)].replace(/[^A-Za-z0-9_-]+/g, '_')}-${i}.png`);
      await writePng(file, await test.load(i));
      return file;
    }),
  );
  const attention = await showAttention({ checkpoint, images: images.filter((_, k) => k !== 1), outDir: attentionDir });
  const matches = path.join(base, 'matches.png');
  await showMatches({ checkpoint, imageA: images[0], imageB: images[1], output: matches });
  const embedding = path.join(base, 'embedding.svg');
  await showEmbedding({ checkpoint, output: embedding });
  const curves = path.join(base, 'curves.svg');
  const metrics = await Promise.all(runs.map(async (r) => parseMetrics(path.basename(r), await readFile(path.join(r, 'metrics.jsonl'), 'utf8'))));
  await writeFile(curves, await runCurvesSvg(metrics, `${path.basename(base)}: ${runs.map((r) => path.basename(r)).join(' then ')}`));
  return { images, attention, matches, embedding, curves };
}
