// The command line's heavy packages, loaded on first use: sharp (image files, 20 MB of libvips), vega and
// vega-lite (charts, 27 MB) and umap-js. They are optional peer dependencies of the package (package.json),
// so a library user of smkd-webgpu/engine, /model or /train does not install them, `smkd train` does not
// load them before it takes its run lock, and a command that needs a missing one says which to install.
import type Sharp from 'sharp';
import type { UMAP as Umap } from 'umap-js';
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite';

/** The error of an `import()` that could not find `name`, in words; any other failure as it is. */
function missing(name: string, purpose: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((e as Error).message).includes(name))
    return new Error(`${purpose} needs the package ${name}, which is not installed (an optional dependency of smkd-webgpu): npm install ${name}`);
  return e as Error;
}

let sharp: Promise<typeof Sharp> | undefined;
/** sharp (decoding, resizing and writing images). */
export function loadSharp(purpose = 'reading and writing image files'): Promise<typeof Sharp> {
  sharp ??= import('sharp').then(
    (m) => m.default,
    (e: unknown) => {
      sharp = undefined;
      throw missing('sharp', purpose, e);
    },
  );
  return sharp;
}

/** umap-js's UMAP class (the 2-D map of `smkd show embedding`). */
export async function loadUmap(): Promise<typeof Umap> {
  try {
    return (await import('umap-js')).UMAP;
  } catch (e) {
    throw missing('umap-js', 'show embedding', e);
  }
}

/** A vega-lite chart rendered headless to SVG text (the curves of `smkd plot`, the demo and the studies; `show embedding`). */
export async function vegaLiteSvg(spec: VegaLite.TopLevelSpec): Promise<string> {
  let vega: typeof Vega;
  let vegaLite: typeof VegaLite;
  try {
    [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  } catch (e) {
    throw missing(String((e as Error).message).includes('vega-lite') ? 'vega-lite' : 'vega', 'drawing charts', e);
  }
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
