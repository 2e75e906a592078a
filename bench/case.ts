// What a benchmark case is: one computation done by our kernel, optionally by the same maths composed
// from our core ops, by tfjs (webgpu and wasm backends) and by jax-js (wasm and webgpu) on the same
// random inputs, with the work it does for throughput figures.
import type { Tensor } from '../engine/index.js';
import type { JaxArray, JaxDevice, JaxEnv } from './jaxjs/backends.js';
import type { Tf, TfTensor } from './tfjs/backends.js';

/** One way of computing the case. */
export interface Variant {
  /** Record one op (forward, or forward + backward); returns what it produced, which the caller disposes. */
  step(): Tensor[];
}

/** How closely the two variants agree on one run from the same state. */
export interface Agreement {
  ok: boolean;
  /** Scale-relative max error, max |fused - unfused| / max |unfused| (or the case's own measure, see `detail`). */
  error: number;
  tolerance: number;
  detail?: string;
}

/** The case written with tfjs, on whichever tfjs backend is active when it is built. */
export interface TfInstance {
  /** One op; returns what it produced, which the caller disposes (temporaries go with tf.tidy). */
  step(): TfTensor[];
  /** One step of ours and one of tfjs from the same state, compared (reads back). */
  agree(): Promise<Agreement>;
  dispose(): void;
}

/** The case written with jax-js, on one jax-js device. */
export interface JaxInstance {
  /** Record one op (jax-js runs it when its results are awaited); returns what it produced, which the caller awaits and disposes. */
  step(): JaxArray[];
  /** One step of ours and one of jax-js from the same state, compared (reads back). */
  agree(): Promise<Agreement>;
  dispose(): void;
}

/** A case with its inputs built on the GPU. */
export interface Instance {
  /** Our kernel (the fused one where there is a choice). */
  fused: Variant;
  /** The same maths from our core ops, where the case has a fused kernel to compare with. */
  unfused?: Variant;
  /** Run fused and unfused once from the same state and compare the results (reads back). */
  agree?(): Promise<Agreement>;
  /** The tfjs version, from our current inputs and state (read back and uploaded to tfjs). */
  tfjs?(tf: Tf): Promise<TfInstance>;
  /** The jax-js version on `device`, from our current inputs and state (read back and uploaded to jax-js). */
  jax?(env: JaxEnv, device: JaxDevice): Promise<JaxInstance>;
  dispose(): void;
}

/** Useful work of one op, the same for both variants (so the throughput ratio is the time ratio). */
export type Work = { flops: number } | { bytes: number };

export interface BenchCase {
  /** Suite name: 'attention', 'softCrossEntropy', ... */
  suite: string;
  /** Case name with its shape, e.g. 'fwd+bwd B=8 H=6 T=197 Dh=64'. */
  name: string;
  work: Work;
  /** What the unfused variant is, in one line of ops (for the report), when there is one. */
  unfused?: string;
  /** What the tfjs version is, in one line of tfjs ops. */
  tfjs?: string;
  /** What the jax-js version is, in one line of jax-js ops (cases that have one). */
  jax?: string;
  /** Part of `--quick` (a representative subset that fits the time budget). */
  quick?: boolean;
  setup(): Instance | Promise<Instance>;
}

/** 'full' are the shapes the report is about; 'reduced' are small versions of them for the smoke test. */
export type Sizes = 'full' | 'reduced';
