// Gradient clipping over a whole gradient arena in two dispatches: per parameter tensor (docs/algorithm.md §7.5, DINO's
// clip_gradients) or by the global norm (torch.nn.utils.clip_grad_norm_). The norms and factors come
// back as tensors, to be read after the step is submitted.
import { NORM_WG, clipGradKernel, gradSqPartialsKernel, type ClipMode } from '../../kernels/grad-norm.js';
import { grid1d } from '../../kernels/kernel.js';
import type { ParameterArena } from '../arena.js';
import { launch } from '../ops/launch.js';
import { empty, fromArray, type Tensor } from '../tensor.js';

/**
 * The norms and factors of a clip, valid until the next clip of the same arena: that call disposes them
 * if the caller has not (a training loop that ignores them holds one result, not one per step). Inside a
 * tidy() they are freed with its scope unless returned; `dispose()` frees them at once.
 */
export interface ClipResult {
  /** [P] ‖grad‖₂ of each parameter before clipping (0 without a gradient). */
  norms: Tensor<'f32'>;
  /** [P] the factor each gradient was multiplied by (1 when not clipped or without a gradient). */
  factors: Tensor<'f32'>;
  /** [] the global norm of all gradients before clipping (what clip_grad_norm_ returns). */
  totalNorm: Tensor<'f32'>;
  /** Frees the three tensors (idempotent). */
  dispose: () => void;
}

/** Each arena's latest clip result, disposed when the next clip of that arena is made. */
const latest = new WeakMap<ParameterArena, ClipResult>();

export interface ClipOptions {
  /** Which parameters have a gradient (default: the arena's flags from backward / setGrads). */
  hasGrad?: ArrayLike<number | boolean>;
}

function clip(arena: ParameterArena, maxNorm: number, mode: ClipMode, o: ClipOptions, op: string): ClipResult {
  if (!(maxNorm > 0)) throw new Error(`${op}: max norm ${maxNorm} must be positive (skip the call to disable clipping)`);
  const P = arena.entries.length;
  const has = o.hasGrad ?? arena.hasGrad;
  if (has.length !== P) throw new Error(`${op}: hasGrad has ${has.length} flags for ${P} parameters`);
  const label = `${op}(${arena.label}, ${P} parameters, ${maxNorm})`;
  const flags = fromArray(
    Array.from(has, (h, i) => (h && arena.entries[i].requiresGrad ? 1 : 0)),
    [P],
    'u32',
  );
  const partial = empty([arena.numChunks], 'f32', label);
  const grads = arena.grads.flat;
  const groups = grid1d(arena.numChunks * NORM_WG, NORM_WG);
  launch(gradSqPartialsKernel(), { chunks: arena.numChunks }, [partial], [grads, arena.chunkTable, flags], groups, label);
  latest.get(arena)?.dispose();
  const norms = empty([P], 'f32', label);
  const factors = empty([P], 'f32', label);
  const totalNorm = empty([], 'f32', label);
  launch(clipGradKernel(mode), { chunks: arena.numChunks, maxNorm }, [grads, norms, factors, totalNorm], [partial, arena.chunkTable, flags], groups, label);
  partial.dispose();
  flags.dispose();
  const out: ClipResult = {
    norms,
    factors,
    totalNorm,
    dispose: () => {
      for (const t of [norms, factors, totalNorm]) t.dispose();
    },
  };
  latest.set(arena, out);
  return out;
}

/** docs/algorithm.md §7.5: each parameter's gradient scaled by clip/(‖g‖ + 1e-6) where that is below 1. */
export function clipGradients(arena: ParameterArena, clipValue: number, o: ClipOptions = {}): ClipResult {
  return clip(arena, clipValue, 'perTensor', o, 'clipGradients');
}

/** torch.nn.utils.clip_grad_norm_: every gradient scaled by min(1, maxNorm/(‖all grads‖ + 1e-6)). */
export function clipGradNorm(arena: ParameterArena, maxNorm: number, o: ClipOptions = {}): ClipResult {
  return clip(arena, maxNorm, 'global', o, 'clipGradNorm');
}
