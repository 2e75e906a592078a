// Bundles a module of the repository's for a page with esbuild: the engine's and the model's Node
// entries (engine/index.ts, model/index.ts) resolve to their browser entries, so code written against
// the Node entries (the tests' helpers, the bench suites) runs in the page unchanged, and any other Node
// import fails the build. `replace` swaps further modules for browser versions (the bench's tfjs loader).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Imports of `from` (repository-relative, as imported: '.js') resolve to `to` (repository-relative source). */
function replacements(map: Record<string, string>): Plugin {
  const abs = new Map(Object.entries(map).map(([from, to]) => [path.join(root, from), path.join(root, to)]));
  return {
    name: 'browser-replacements',
    setup(build) {
      build.onResolve({ filter: /\.js$/ }, (args) => {
        const to = args.resolveDir ? abs.get(path.resolve(args.resolveDir, args.path)) : undefined;
        return to ? { path: to } : undefined;
      });
    },
  };
}

/** Bundle `entry` (a .ts file) and write it to `outfile` as one ES module. */
export async function bundleForPage(entry: string, outfile: string, replace: Record<string, string> = {}): Promise<void> {
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
    plugins: [replacements({ 'engine/index.js': 'engine/browser.ts', 'model/index.js': 'model/browser.ts', ...replace })],
  });
}
