// What a benchmark case is: one computation done two ways (the fused kernel and the same maths
// composed from core ops) on shared random inputs, with the work it does for throughput figures.
import type { Tensor } from '../engine/index.js';

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

/** A case with its inputs built on the GPU. */
export interface Instance {
  fused: Variant;
  unfused: Variant;
  /** Run each variant once from the same state and compare the results (reads back). */
  agree(): Promise<Agreement>;
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
  /** What the unfused variant is, in one line of ops (for the report). */
  unfused: string;
  setup(): Instance | Promise<Instance>;
}

/** 'full' are the shapes the report is about; 'reduced' are small versions of them for the smoke test. */
export type Sizes = 'full' | 'reduced';
