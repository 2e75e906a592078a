// Bundles a test module for the page with esbuild: the engine's and the model's Node entries
// (engine/index.ts, model/index.ts) resolve to their browser entries, so the tests' own helpers,
// written against the Node entries, run in the page unchanged; any other Node import fails the build.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const browserEntries: Plugin = {
  name: 'browser-entries',
  setup(build) {
    build.onResolve({ filter: /(^|\/)(engine|model)\/index\.js$/ }, (args) => {
      const target = path.resolve(args.resolveDir, args.path);
      for (const layer of ['engine', 'model']) {
        if (target === path.join(root, layer, 'index.js')) return { path: path.join(root, layer, 'browser.ts') };
      }
      return undefined;
    });
  },
};

/** Bundle `entry` (a .ts file) and write it to `outfile` as one ES module. */
export async function bundleForPage(entry: string, outfile: string): Promise<void> {
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: 'inline',
    logLevel: 'silent',
    plugins: [browserEntries],
  });
}
