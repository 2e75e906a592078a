// Using a loaded tfjs, on any platform: its active backend, draining tfjs-webgpu's queue, reading
// tensors back. Shared by the Node bench (bench/tfjs/backends.ts loads tfjs there) and the browser
// bench's page (bench/browser/tfjs-page.ts), where the engine's gpuWait is a plain wait.
import type * as TfCore from '@tensorflow/tfjs-core';
import { gpuWait } from '../../engine/index.js';

export type Tf = typeof TfCore;
export type TfTensor = TfCore.Tensor;
export type TfBackendName = 'tfjs-webgpu' | 'tfjs-wasm';

/** The subset of tfjs-webgpu's WebGPUBackend used to submit its pending work. */
interface WebGpuBackendQueue {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
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
  const be = tf.backend() as unknown as WebGpuBackendQueue;
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
