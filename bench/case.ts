// What a benchmark case is: one computation done by our kernel, optionally by the same maths composed
// from our core ops, by tfjs (webgpu and wasm backends), by jax-js (wasm and webgpu) and by PyTorch on
// the CPU (a separate process) on the same random inputs, with the work it does for throughput figures.
import type { Tensor } from '../engine/index.js';
import type { JaxArray, JaxDevice, JaxEnv } from './jaxjs/backends.js';
import type { TorchEnv } from './torch/peer.js';
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

/** The case in a PyTorch process (bench/torch/peer.py), set up from our current weights, state and inputs. */
export interface TorchInstance {
  /** Run n steps there; resolves when they are done (the runner's wall clock covers the round trip). */
  run(n: number): Promise<void>;
  /** Steps of ours and of PyTorch from the same state, their losses compared (reads back). */
  agree(): Promise<Agreement>;
  /** Ends the process. */
  dispose(): Promise<void>;
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
  /** The PyTorch version, from our current weights, state and inputs (read back and written to its process). */
  torch?(env: TorchEnv): Promise<TorchInstance>;
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
  /** What the PyTorch version is, in a line (cases that have one). */
  torch?: string;
  /** Part of `--quick` (a representative subset that fits the time budget). */
  quick?: boolean;
  /** Time with the plans for ops of a second or more (HEAVY_PLANS: one op a sample); default: the trainingStep suite's cases. */
  heavy?: boolean;
  setup(): Instance | Promise<Instance>;
}

/** 'full' are the shapes the report is about; 'reduced' are small versions of them for the smoke test. */
export type Sizes = 'full' | 'reduced';
