// bench/tfjs/backends.ts for the page: tfjs is the page's own (tfjs-core + tfjs-backend-webgpu on its own
// navigator.gpu device, as a web app would have it, imported by bench/browser/page.ts), so there is
// nothing to load; using it is bench/tfjs/use.ts, as in Node.
export { drainTfjs, readTf, tfName, useBackend, type Tf, type TfTensor, type TfBackendName } from '../tfjs/use.js';
export type { TfjsEnv } from '../tfjs/backends.js';

export function loadTfjs(): never {
  throw new Error('the browser bench imports tfjs itself (bench/browser/page.ts)');
}
