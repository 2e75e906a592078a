// Schedules for any training loop, on the host in float64: the reference code's cosine_scheduler
// (docs/algorithm.md §7.3: a linear warm-up, then a cosine from the peak to the final value, with numpy's
// linspace semantics) as a function of the iteration, and warmupCosine, the same as a closure with named settings.

/**
 * np.linspace(start, stop, num)[i]: i·step + start with step = (stop − start)/(num − 1), the last
 * point exactly `stop`; num = 1 gives [start].
 */
export function linspaceAt(start: number, stop: number, num: number, i: number): number {
  if (num > 1 && i === num - 1) return stop;
  return num > 1 ? i * ((stop - start) / (num - 1)) + start : start;
}

/**
 * The reference code's cosine_scheduler at iteration `it`: a linear warm-up from `startWarmupValue` to `base` over
 * the first warmupIters iterations (np.linspace, endpoints inclusive), then
 * final + (base − final)·(1 + cos(π·k/(total − warmupIters)))/2 with k = it − warmupIters.
 */
export function cosineScheduleAt(base: number, final: number, totalIters: number, warmupIters: number, it: number, startWarmupValue = 0): number {
  if (!(it >= 0 && it < totalIters && Number.isInteger(it))) throw new Error(`cosineScheduleAt: iteration ${it} is outside 0..${totalIters - 1}`);
  if (it < warmupIters) return linspaceAt(startWarmupValue, base, warmupIters, it);
  const k = it - warmupIters;
  return final + 0.5 * (base - final) * (1 + Math.cos((Math.PI * k) / (totalIters - warmupIters)));
}

export interface WarmupCosineOptions {
  /** The value after the warm-up (the peak learning rate). */
  peak: number;
  /** The value at the last iteration's end of the cosine (default 0). */
  final?: number;
  /** Iterations in all. */
  total: number;
  /** Iterations of linear warm-up from `start` to `peak` (default 0). */
  warmup?: number;
  /** The value at iteration 0 of the warm-up (default 0). */
  start?: number;
}

/**
 * The value at each iteration 0..total-1 of a linear warm-up then a cosine decay, as timm's and DINO's
 * training loops set the learning rate (or the weight decay) every step:
 * `const lrAt = warmupCosine({ peak: 1e-3, final: 1e-5, total: 10_000, warmup: 500 }); opt.step({ lr: lrAt(it), ... })`.
 */
export function warmupCosine(o: WarmupCosineOptions): (it: number) => number {
  const { peak, final = 0, total, warmup = 0, start = 0 } = o;
  for (const [k, v] of Object.entries({ peak, final, start })) if (!Number.isFinite(v)) throw new Error(`warmupCosine: ${k} must be a finite number, got ${v}`);
  if (!(Number.isInteger(total) && total > 0)) throw new Error(`warmupCosine: total must be a positive whole number of iterations, got ${total}`);
  if (!(Number.isInteger(warmup) && warmup >= 0 && warmup < total)) throw new Error(`warmupCosine: warmup must be a whole number of iterations in 0..${total - 1}, got ${warmup}`);
  return (it) => cosineScheduleAt(peak, final, total, warmup, it, start);
}
