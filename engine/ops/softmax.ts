// softmax and logSoftmax along an axis, and the row-op plumbing they share with norm.ts.
import type { KernelSource } from '../../kernels/kernel.js';
import { rowGroups, rowLogThreads, rowUniforms, softmaxBackwardKernel, softmaxKernel } from '../../kernels/softmax.js';
import { softwarePaths } from '../tuning.js';
import { recordOp } from '../autograd.js';
import { normAxis } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { assertFloat, launch, opLabel } from './launch.js';
import { transpose } from './layout.js';

/** `x` viewed as [rows, d], d the last axis (a scalar is one row of one value). */
export function rowsOf(x: Tensor): { rows: number; d: number } {
  const d = x.rank === 0 ? 1 : x.shape[x.rank - 1];
  return { rows: d === 0 ? 0 : x.size / d, d };
}

/** Record one launch of a row kernel (kernels/softmax.ts rowKernel) over `rows` rows of length `d`. */
let forcedLogThreads: number | undefined;

/** For tests and benchmarks: force log2 of the threads per row of every row kernel (undefined: automatic). */
export function useRowThreads(logT?: number): void {
  forcedLogThreads = logT;
}

/** Longest row a single thread walks alone on a software adapter (a float32 sum of that many terms). */
const SERIAL_ROW_MAX = 1024;

/**
 * Threads per row: one on a software adapter for rows up to SERIAL_ROW_MAX, where a tree reduction
 * is workgroup-memory loads (a loop over the lanes each) and barriers (coroutine switches), so a
 * thread that walks its row alone does the same loads and nothing else: layerNorm forward + backward
 * on [2080, 192] ran 2.6x faster (bench/NOTES.md). Longer rows keep the tree, for the accuracy of the
 * sums and to spread a few long rows over the cores; 32-256 threads by the row length on a GPU.
 */
function rowThreads(d: number): number {
  return forcedLogThreads ?? (softwarePaths() && d <= SERIAL_ROW_MAX ? 0 : rowLogThreads(d));
}

/** `kernel(serial)`: the row kernel, in its one-thread-per-row variant when `serial` (kernels/softmax.ts). */
export function launchRows(kernel: (serial: boolean) => KernelSource, rows: number, d: number, p: number, outputs: Tensor[], inputs: Tensor[], label: string): void {
  const logT = rowThreads(d);
  if (rows * d > 0) launch(kernel(logT === 0), rowUniforms(rows, d, p, logT), outputs, inputs, rowGroups(rows, d, logT), label);
}

/** Apply a last-axis op `f` along `axis`: other axes go through a transpose there and back. */
export function alongAxis(op: string, x: Tensor, axis: number, f: (x: Tensor) => Tensor<'f32'>): Tensor<'f32'> {
  const a = normAxis(op, axis, x.rank);
  if (x.rank === 0 || a === x.rank - 1) return f(x);
  const xt = transpose(x, a, -1);
  const yt = f(xt);
  xt.dispose();
  const y = transpose(yt, a, -1);
  yt.dispose();
  return y;
}

/** exp(x) / sum(exp(x)) along `axis` (torch.softmax), stable for any finite logits. */
export function softmax(x: Tensor, axis = -1): Tensor<'f32'> {
  assertFloat('softmax', x);
  return alongAxis('softmax', x, axis, (t) => softmaxLast(t, false));
}

/** x - log(sum(exp(x))) along `axis` (torch.log_softmax). */
export function logSoftmax(x: Tensor, axis = -1): Tensor<'f32'> {
  assertFloat('logSoftmax', x);
  return alongAxis('logSoftmax', x, axis, (t) => softmaxLast(t, true));
}

function softmaxLast(x: Tensor, log: boolean): Tensor<'f32'> {
  const name = log ? 'logSoftmax' : 'softmax';
  const label = opLabel(name, [x]);
  const { rows, d } = rowsOf(x);
  const y = empty(x.shape, 'f32', label);
  launchRows((serial) => softmaxKernel(log, serial), rows, d, 0, [y], [x], label);
  recordOp(
    name,
    [x],
    [y],
    ([g], [sy]) => {
      const dx = empty(x.shape, 'f32', `${label} backward`);
      launchRows((serial) => softmaxBackwardKernel(log, serial), rows, d, 0, [dx], [g!, sy], `${label} backward`);
      return [dx];
    },
    [y],
  );
  return y;
}
