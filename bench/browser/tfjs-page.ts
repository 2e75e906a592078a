// bench/tfjs/backends.ts for the page: tfjs is the page's own (tfjs-core + tfjs-backend-webgpu on its own
// navigator.gpu device, as a web app would have it), so loading and draining need no Node and no shared device.
import type { TfBackendName, Tf, TfTensor } from '../tfjs/backends.js';

export type { Tf, TfTensor, TfBackendName, TfjsEnv } from '../tfjs/backends.js';

export function tfName(b: TfBackendName): 'webgpu' | 'wasm' {
  return b === 'tfjs-webgpu' ? 'webgpu' : 'wasm';
}

export async function useBackend(tf: Tf, b: TfBackendName): Promise<void> {
  if (tf.getBackend() !== tfName(b) && !(await tf.setBackend(tfName(b)))) throw new Error(`tfjs: backend ${tfName(b)} did not initialise`);
}

interface WebGpuBackendInternals {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** Submit what tfjs-webgpu has encoded and wait for its queue to drain. */
export async function drainTfjs(tf: Tf): Promise<void> {
  if (tf.getBackend() !== 'webgpu') return;
  const be = tf.backend() as unknown as WebGpuBackendInternals;
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  be.submitQueue();
  await be.device.queue.onSubmittedWorkDone();
}

export async function readTf(ts: readonly TfTensor[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const t of ts) out.push(Float32Array.from(await t.data()));
  return out;
}

export function loadTfjs(): never {
  throw new Error('the browser bench imports tfjs itself (bench/browser/page.ts)');
}
