// The few-shot page as a static site in web/dist/ (git-ignored): web/page/main.ts bundled by esbuild for
// the browser (one ESM file; a `node:` import anywhere on its path fails the build, which is what keeps
// the page's path platform-neutral), index.html and style.css, and the files the page fetches (the
// shipped model and the Omniglot pack) copied under their repository paths, so the folder can be
// served by any static server as it is.
//   npx tsx web/build.ts
import { build } from 'esbuild';
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const WEB_DIST = path.join(ROOT, 'web', 'dist');
const PAGE = path.join(ROOT, 'web', 'page');

/** Repository files the page fetches, at the same relative paths (pretrained.ts, omniglot.ts). */
const ASSETS = ['models/omniglot-vit.safetensors', 'data/omniglot/omniglot-28.json', 'data/omniglot/omniglot-28.u8.gz', 'data/omniglot/LICENSE'];

export interface BuiltPage {
  dir: string;
  /** Size of the bundle (main.js), bytes. */
  bundleBytes: number;
  ms: number;
}

/** Build web/dist from scratch. */
export async function buildPage(opts: { minify?: boolean } = {}): Promise<BuiltPage> {
  const t0 = performance.now();
  await rm(WEB_DIST, { recursive: true, force: true });
  await mkdir(WEB_DIST, { recursive: true });
  await build({
    entryPoints: [path.join(PAGE, 'main.ts')],
    outfile: path.join(WEB_DIST, 'main.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: opts.minify ?? true,
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
  });
  await Promise.all(['index.html', 'style.css'].map((f) => copyFile(path.join(PAGE, f), path.join(WEB_DIST, f))));
  for (const a of ASSETS) {
    await mkdir(path.dirname(path.join(WEB_DIST, a)), { recursive: true });
    await copyFile(path.join(ROOT, a), path.join(WEB_DIST, a));
  }
  return { dir: WEB_DIST, bundleBytes: (await stat(path.join(WEB_DIST, 'main.js'))).size, ms: performance.now() - t0 };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const built = await buildPage();
  console.log(`built ${path.relative(process.cwd(), built.dir) || '.'} (main.js ${(built.bundleBytes / 1024).toFixed(0)} KiB) in ${(built.ms / 1000).toFixed(1)} s`);
}
