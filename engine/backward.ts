// The backward pass, apart from the tape (autograd.ts) because it calls ops (fill, add) whose forwards
// record on that tape: with both in one file, autograd.ts and ops/elementwise.ts imported each other.
import { fmt, sameShape } from './shape.js';
import { keep, tidy } from './scope.js';
import type { Tensor } from './tensor.js';
import { clearTape, graphFreed, noGrad, tapeEntries } from './autograd.js';
import { add, fill } from './ops/elementwise.js';
import { accumulateArenaGrad, emptyGradSlot } from './arena.js';
import { rt } from './runtime.js';

export interface BackwardOptions {
  /**
   * Keep the tape (and the tensors it saved) so that a second backward() can go through the same graph,
   * as PyTorch's `retain_graph=True`; the next backward() without it frees everything. Default false.
   */
  retainGraph?: boolean;
}

/** The error for a gradient that would flow into a tensor whose graph an earlier backward() freed. */
function freedError(t: Tensor): Error {
  return new Error(
    `backward(): ${t.describe()} was made by a graph that an earlier backward() freed, so no gradient can flow through it ` +
      `(PyTorch: "Trying to backward through the graph a second time"); run the forward again, or pass { retainGraph: true } to the first backward()`,
  );
}

/**
 * Gradients of `output` (a scalar, or any tensor with `gradient` given) with respect to every leaf
 * that requires a gradient, accumulated into their `.grad`. Frees the tape afterwards (unless
 * `retainGraph`): a second backward() through the same graph is an error, not a silent no-op.
 */
export function backward(output: Tensor, gradient?: Tensor<'f32'>, opts: BackwardOptions = {}): void {
  if (!output.requiresGrad) throw new Error(`backward(): ${output.describe()} does not require a gradient (no input of its graph requires one)`);
  if (graphFreed(output)) throw freedError(output);
  if (!gradient && output.size !== 1) {
    throw new Error(`backward(): ${output.describe()} is not a scalar; pass the gradient of the output explicitly`);
  }
  if (gradient && !sameShape(gradient.shape, output.shape)) {
    throw new Error(`backward(): gradient shape ${fmt(gradient.shape)} does not match output shape ${fmt(output.shape)}`);
  }
  const grads = new Map<Tensor, Tensor<'f32'>>();
  // Dispatches recorded from here on belong to the backward pass (the profiler groups by it).
  const runtime = rt();
  runtime.backwardDepth++;
  try {
    const seed = gradient ? gradient.shareRef() : keep(fill(output.shape, 1));
    accumulate(grads, output, seed);
    const tape = tapeEntries();
    const last = output.creator ? tape.indexOf(output.creator) : -1;
    for (let i = last; i >= 0; i--) {
      const e = tape[i];
      const outGrads = e.outputs.map((o) => grads.get(o) ?? null);
      if (outGrads.every((g) => g === null)) continue;
      const needs = e.inputs.map((x) => x.requiresGrad);
      tidy(() => {
        // A parameter's first gradient of the step may be written straight into its arena slot (once per
        // entry: an op taking the same parameter twice gets the slot for the first use only).
        const first = e.inputs.map((x, k) => needs[k] && e.inputs.indexOf(x) === k);
        const into = e.inputs.map((x, k) => (first[k] ? emptyGradSlot(x) : undefined));
        const folded = new Set<number>();
        const pending = { of: e.inputs.map((x, k) => (first[k] && x.creator ? grads.get(x) : undefined)), folded: (k: number) => void folded.add(k) };
        const res = noGrad(() => e.backward(outGrads, e.saved, needs, into, pending));
        e.inputs.forEach((x, k) => {
          const g = res[k];
          if (!needs[k] || !g) return;
          if (!sameShape(g.shape, x.shape)) {
            throw new Error(`internal: backward of ${e.name} gave a gradient of shape ${fmt(g.shape)} for an input of shape ${fmt(x.shape)}`);
          }
          if (folded.has(k)) {
            // The rule added the gradient x already had: g is the whole of it now.
            if (!pending.of[k]) throw new Error(`internal: backward of ${e.name} folded a pending gradient input ${k} did not have`);
            grads.get(x)?.dispose();
            grads.set(x, g.shareRef());
            return;
          }
          accumulate(grads, x, g.shareRef());
        });
      });
      for (const o of e.outputs) {
        grads.get(o)?.dispose();
        grads.delete(o);
      }
    }
  } finally {
    runtime.backwardDepth--;
    for (const g of grads.values()) g.dispose();
    if (!opts.retainGraph) clearTape();
  }
}

function accumulate(grads: Map<Tensor, Tensor<'f32'>>, x: Tensor, g: Tensor<'f32'>): void {
  if (graphFreed(x)) {
    g.dispose();
    throw freedError(x);
  }
  if (x.creator) {
    const prev = grads.get(x);
    if (prev) {
      grads.set(x, keep(noGrad(() => add(prev, g))));
      prev.dispose();
      g.dispose();
    } else grads.set(x, g);
    return;
  }
  if (!x.requiresGrad) {
    g.dispose();
    return;
  }
  // Arena parameters accumulate in place into their arena's gradient buffer.
  if (accumulateArenaGrad(x, g)) {
    g.dispose();
    return;
  }
  if (x.grad) {
    const prev = x.grad;
    x.grad = keep(noGrad(() => add(prev, g)));
    prev.dispose();
    g.dispose();
  } else x.grad = g;
}
