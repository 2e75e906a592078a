// Rebuilds the packed Omniglot subset that ships in data/omniglot/ (the default dataset of `smkd
// train`, `eval` and `demo`) from the PNG folders of Omniglot's background set:
//
//   npx tsx scripts/pack-omniglot.ts ../shared/data/omniglot/background [--size 28] [--out data/omniglot]
//
// Every image is inverted (bright strokes on black, as docs/algorithm.md §10.1 has it), resized
// to size x size with sharp's area-preserving Lanczos filter and stored as one byte per pixel, in
// class order (alphabet, then character, then file name), gzipped. The JSON beside it lists the classes,
// their image counts and files, and the split of every alphabet (train / val / test).
import { mkdir, readdir, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { OMNIGLOT_SPLITS, packFiles, type OmniglotPackMeta } from '../train/data/omniglot-pack.js';

async function main(argv: string[]): Promise<void> {
  const args = [...argv];
  const opt = (name: string, fallback: string): string => {
    const i = args.indexOf(name);
    if (i < 0) return fallback;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const size = Number(opt('--size', '28'));
  const out = opt('--out', 'data/omniglot');
  const root = args[0];
  if (!root) throw new Error('usage: tsx scripts/pack-omniglot.ts <omniglot/background folder> [--size 28] [--out data/omniglot]');
  const alphabets = (await readdir(root, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const missing = Object.keys(OMNIGLOT_SPLITS).filter((a) => !alphabets.includes(a));
  if (missing.length) throw new Error(`${root}: missing alphabet folder(s) ${missing.join(', ')}`);
  const classes: OmniglotPackMeta['classes'] = [];
  const pixels: Buffer[] = [];
  for (const alphabet of Object.keys(OMNIGLOT_SPLITS)) {
    const chars = (await readdir(path.join(root, alphabet))).filter((c) => !c.startsWith('.')).sort();
    for (const ch of chars) {
      const dir = path.join(root, alphabet, ch);
      const files = (await readdir(dir)).filter((f) => f.endsWith('.png')).sort();
      for (const f of files) {
        const file = path.join(dir, f);
        const img = await sharp(file)
          .greyscale()
          .negate({ alpha: false })
          .resize(size, size, { kernel: 'lanczos3', fit: 'fill' })
          .raw()
          .toBuffer({ resolveWithObject: true })
          .catch((e: Error) => {
            throw new Error(`${file}: ${e.message}`);
          });
        if (img.info.channels !== 1 || img.data.length !== size * size) throw new Error(`${file}: decoded to ${img.info.channels} channel(s), ${img.data.length} bytes`);
        pixels.push(img.data);
      }
      classes.push({ name: `${alphabet}/${ch}`, alphabet, images: files.length, files });
    }
  }
  const meta: OmniglotPackMeta = {
    source: 'Omniglot background set, 8 alphabets (Lake, Salakhutdinov and Tenenbaum, Science 2015; https://github.com/brendenlake/omniglot), MIT licence: see LICENSE',
    size,
    preprocessing: `inverted (bright strokes on black), resized from 105 px to ${size} px (sharp, lanczos3), one byte per pixel, gzipped`,
    splits: OMNIGLOT_SPLITS,
    classes,
  };
  const files = packFiles(out, size);
  await mkdir(out, { recursive: true });
  await writeFile(files.pixels, gzipSync(Buffer.concat(pixels), { level: 9 }));
  await writeFile(files.meta, JSON.stringify(meta, null, 1) + '\n');
  await copyFile(path.join(root, '..', 'LICENSE'), path.join(out, 'LICENSE')).catch(() => undefined);
  console.log(`${files.pixels}: ${pixels.length} images of ${classes.length} classes at ${size} px`);
}

main(process.argv.slice(2)).catch((e: Error) => {
  console.error(`pack-omniglot: ${e.message}`);
  process.exit(1);
});
