// tfjs on the engine's own adapter: navigator.gpu is pointed at the engine's Dawn adapter before
// tfjs-backend-webgpu loads, and that adapter hands tfjs the engine's device (Dawn allows one device
// per adapter), so both run on the same adapter, device and queue. The wasm backend is the reference.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TfCore from '@tensorflow/tfjs-core';
import { rt } from '../../engine/index.js';
import { gpuWait } from '../../engine/runtime.js';
import { shareEngineDevice } from '../engine-navigator.js';

export type Tf = typeof TfCore;
export type TfTensor = TfCore.Tensor;
export type TfBackendName = 'tfjs-webgpu' | 'tfjs-wasm';

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

/** The subset of tfjs-webgpu's WebGPUBackend used to submit its pending work. */
interface WebGpuBackendInternals {
  device: GPUDevice;
  adapterInfo?: { vendor?: string; architecture?: string };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
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

export function tfName(b: TfBackendName): 'webgpu' | 'wasm' {
  return b === 'tfjs-webgpu' ? 'webgpu' : 'wasm';
}

/** Make `b` tfjs' active backend. */
export async function useBackend(tf: Tf, b: TfBackendName): Promise<void> {
  if (tf.getBackend() !== tfName(b) && !(await tf.setBackend(tfName(b)))) throw new Error(`tfjs: backend ${tfName(b)} did not initialise`);
}

/** Submit what tfjs-webgpu has encoded and wait for the queue to drain (wasm runs synchronously). */
export async function drainTfjs(tf: Tf): Promise<void> {
  if (tf.getBackend() !== 'webgpu') return;
  const be = tf.backend() as unknown as WebGpuBackendInternals;
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  be.submitQueue();
  await gpuWait(be.device.queue.onSubmittedWorkDone());
}

/** Values of tfjs tensors as Float32Arrays (ints converted). */
export async function readTf(ts: readonly TfTensor[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const t of ts) out.push(Float32Array.from(await t.data()));
  return out;
}
