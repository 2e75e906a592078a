// tfjs on the engine's own adapter: navigator.gpu is pointed at the engine's Dawn adapter before
// tfjs-backend-webgpu loads, and that adapter hands tfjs the engine's device (Dawn allows one device
// per adapter), so both run on the same adapter, device and queue. The wasm backend is the reference.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { rt } from '../../engine/index.js';
import { tfName, type Tf, type TfBackendName } from './use.js';
import { shareEngineDevice } from '../engine-navigator.js';

export { drainTfjs, readTf, tfName, useBackend, type Tf, type TfTensor, type TfBackendName } from './use.js';

export interface TfjsEnv {
  tf: Tf;
  /** Backends that initialised; a missing one is reported in `problems`. */
  available: TfBackendName[];
  problems: string[];
  versions: { core: string; webgpu: string; wasm: string };
  /** True when tfjs-webgpu's device is the engine's device (hence the same adapter). */
  sameDevice: boolean;
  /** What tfjs-webgpu says its adapter is. */
  adapterInfo: string;
}

/** The subset of tfjs-webgpu's WebGPUBackend read to name its adapter. */
interface WebGpuBackendInternals {
  device: GPUDevice;
  adapterInfo?: { vendor?: string; architecture?: string };
}

const require = createRequire(import.meta.url);
const version = (pkg: string): string => (require(`${pkg}/package.json`) as { version: string }).version;

let envPromise: Promise<TfjsEnv> | undefined;

/** Load tfjs once (after `init()`), with both backends registered. */
export function loadTfjs(): Promise<TfjsEnv> {
  envPromise ??= load();
  return envPromise;
}

async function load(): Promise<TfjsEnv> {
  shareEngineDevice();

  const tf = await import('@tensorflow/tfjs-core');
  await registerGradients();
  await import('@tensorflow/tfjs-backend-webgpu');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + path.sep);
  const available: TfBackendName[] = [];
  const problems: string[] = [];
  let sameDevice = false;
  let adapterInfo = 'not initialised';
  const quiet = console.warn;
  for (const name of ['tfjs-webgpu', 'tfjs-wasm'] as const) {
    try {
      // tfjs logs its own init failures and returns false; the reason is caught below.
      console.warn = () => undefined;
      const ok = await tf.setBackend(tfName(name));
      console.warn = quiet;
      if (!ok) throw new Error(`tf.setBackend('${tfName(name)}') returned false`);
      available.push(name);
      if (name === 'tfjs-webgpu') {
        const be = tf.backend() as unknown as WebGpuBackendInternals;
        sameDevice = be.device === rt().gpu.device;
        adapterInfo = [be.adapterInfo?.vendor, be.adapterInfo?.architecture].filter(Boolean).join(' ') || 'unknown';
      }
    } catch (e) {
      console.warn = quiet;
      problems.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  tf.env().set('PROD', true);
  return {
    tf,
    available,
    problems,
    versions: { core: version('@tensorflow/tfjs-core'), webgpu: version('@tensorflow/tfjs-backend-webgpu'), wasm: version('@tensorflow/tfjs-backend-wasm') },
    sameDevice,
    adapterInfo,
  };
}

/**
 * tfjs-core's Node build registers no gradients (the @tensorflow/tfjs bundle does, from ES modules
 * Node cannot load as they are), so bundle dist/register_all_gradients.js with esbuild (tsx's) and
 * load it: tfjs keeps its registries and engine on globalThis, so the copy registers into ours.
 */
async function registerGradients(): Promise<void> {
  const esbuild = await import('esbuild');
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'bench-tfjs-')), 'register_all_gradients.mjs');
  await esbuild.build({
    entryPoints: [require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    outfile: out,
    logLevel: 'error',
  });
  try {
    await import(pathToFileURL(out).href);
  } finally {
    rmSync(path.dirname(out), { recursive: true, force: true });
  }
}
