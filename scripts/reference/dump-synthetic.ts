// Writes the built-in synthetic dataset (train and test splits, seed 0) as raw arrays for the PyTorch
// cross-check in smkd_tiny.py: <out>/synthetic-<split>.u8 ([N, 32, 32, 3] bytes) and .labels (int32).
// usage: npx tsx scripts/reference/dump-synthetic.ts [out-dir, default /tmp/smkd-reference]
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SyntheticGlyphs } from '../../train/data/synthetic.js';

const out = process.argv[2] ?? '/tmp/smkd-reference';
mkdirSync(out, { recursive: true });
for (const split of ['train', 'test'] as const) {
  const ds = new SyntheticGlyphs({ split });
  const pixels = ds.imageSize * ds.imageSize * 3;
  const data = new Uint8Array(ds.size * pixels);
  for (let i = 0; i < ds.size; i++) data.set(ds.image(i).data, i * pixels);
  writeFileSync(path.join(out, `synthetic-${split}.u8`), data);
  writeFileSync(
    path.join(out, `synthetic-${split}.labels`),
    Int32Array.from({ length: ds.size }, (_, i) => ds.label(i)),
  );
  console.log(`${split}: ${ds.size} images, ${ds.classes.length} classes -> ${out}`);
}
