// jax-js (@jax-js/jax) as a third peer: its wasm backend, and its WebGPU backend on the engine's own
// device. jax-js asks `navigator.gpu` for an adapter and that adapter for a device; as for tfjs,
// navigator.gpu is pointed at the engine's Dawn adapter, wrapped so that requestDevice() hands back
// the engine's GPUDevice (Dawn allows one device per adapter), so jax-js-webgpu runs on the same
// adapter, device and queue as ours. jax-js is lazy: an op records pending work, which runs when a
// result is awaited (`blockUntilReady`, `data()`), so a runner keeps what its steps returned and
// drains by awaiting them.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as JaxModule from '@jax-js/jax';
import { rt, type Tensor } from '../../engine/index.js';
import { gpuWait } from '../../engine/runtime.js';
import { shareEngineDevice } from '../engine-navigator.js';

export type Jax = typeof JaxModule;
export type JaxArray = JaxModule.Array;
export type JaxBackendName = 'jax-js-wasm' | 'jax-js-webgpu';
/** jax-js' own name for the device of a backend. */
export type JaxDevice = 'wasm' | 'webgpu';

export interface JaxEnv {
  jax: Jax;
  /** Backends that initialised; a missing one is reported in `problems`. */
  available: JaxBackendName[];
  problems: string[];
  version: string;
  /** True when jax-js' WebGPU device is the engine's device (hence the same adapter). */
  sameDevice: boolean;
  /** Whether jax-js' wasm backend runs its kernels on Web Workers (it needs a global `Worker`, which Node lacks). */
  wasmThreads: boolean;
}

const require = createRequire(import.meta.url);

export function jaxDevice(b: JaxBackendName): JaxDevice {
  return b === 'jax-js-webgpu' ? 'webgpu' : 'wasm';
}

let envPromise: Promise<JaxEnv> | undefined;

/** Load jax-js once (after `init()`), with its wasm and WebGPU backends; never throws (problems are reported). */
export function loadJaxjs(): Promise<JaxEnv> {
  envPromise ??= load();
  return envPromise;
}

async function load(): Promise<JaxEnv> {
  const problems: string[] = [];
  const available: JaxBackendName[] = [];
  let version = 'not installed';
  try {
    // Its exports map has no ./package.json: read the one above its entry point.
    version = (JSON.parse(readFileSync(path.join(path.dirname(require.resolve('@jax-js/jax')), '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // Not installed: the import below says so.
  }
  let jax: Jax;
  try {
    shareEngineDevice();
    jax = await import('@jax-js/jax');
  } catch (e) {
    problems.push(`@jax-js/jax did not load: ${e instanceof Error ? e.message : String(e)}`);
    return { jax: undefined as unknown as Jax, available, problems, version, sameDevice: false, wasmThreads: false };
  }
  let sameDevice = false;
  const quiet = console.error;
  try {
    // jax-js logs its own WebGPU init failure and leaves the backend out; the reason is in the log.
    let said = '';
    console.error = (...a: unknown[]) => void (said += a.map(String).join(' '));
    const devices = await jax.init('wasm', 'webgpu');
    console.error = quiet;
    if (devices.includes('wasm')) available.push('jax-js-wasm');
    else problems.push('jax-js-wasm: the wasm backend did not initialise');
    if (devices.includes('webgpu')) {
      sameDevice = jax.getWebGPUDevice() === rt().gpu.device;
      if (sameDevice) available.push('jax-js-webgpu');
      else problems.push("jax-js-webgpu: got a device other than the engine's");
    } else problems.push(`jax-js-webgpu: the WebGPU backend did not initialise${said ? ` (${said})` : ''}`);
  } catch (e) {
    console.error = quiet;
    problems.push(`jax-js init: ${e instanceof Error ? e.message : String(e)}`);
  }
  // Without a global Worker (Node), jax-js' wasm backend runs every kernel on the calling thread.
  const wasmThreads = typeof SharedArrayBuffer !== 'undefined' && typeof (globalThis as { Worker?: unknown }).Worker !== 'undefined';
  return { jax, available, problems, version, sameDevice, wasmThreads };
}

/** A jax-js array on `device` holding our tensor's current values (f32). */
export async function toJax(env: JaxEnv, t: Tensor, device: JaxDevice): Promise<JaxArray> {
  return env.jax.numpy.array(Float32Array.from(await t.toArray()), { device }).reshape([...t.shape]);
}

/** Run what is pending for `arrays` and wait for it; on WebGPU also wait for the queue to drain. */
export async function drainJax(env: JaxEnv, device: JaxDevice, arrays: readonly JaxArray[]): Promise<void> {
  // gpuWait: sleep between Dawn's event polls while waiting, as our drain and tfjs' do.
  await gpuWait(env.jax.blockUntilReady([...arrays]));
  if (device === 'webgpu') await gpuWait(rt().gpu.device.queue.onSubmittedWorkDone());
}

/** Values of jax-js arrays as Float32Arrays; consumes the arrays (jax-js' data() takes ownership). */
export async function readJax(arrays: readonly JaxArray[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const a of arrays) out.push(Float32Array.from(await a.data()));
  return out;
}
