// Reverse-mode autograd: ops append entries to a tape in the forward pass; backward() walks it back.
import { fmt, sameShape } from './shape.js';
import { keep, tidy } from './scope.js';
import type { Tensor } from './tensor.js';
import { add, fill } from './ops/elementwise.js';
import { accumulateArenaGrad } from './arena.js';
import { rt } from './runtime.js';

/**
 * The backward rule of an op: given the gradients of its outputs (null for an output that got
 * none), the tensors it saved, and which inputs need a gradient, return one gradient per input.
 */
export type BackwardFn = (grads: (Tensor<'f32'> | null)[], saved: Tensor[], needs: boolean[]) => (Tensor<'f32'> | null | undefined)[];

export interface TapeEntry {
  name: string;
  inputs: readonly Tensor[];
  outputs: readonly Tensor[];
  saved: Tensor[];
  backward: BackwardFn;
}

let tape: TapeEntry[] = [];
let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run `fn` without recording anything for autograd (evaluation, EMA, optimiser updates). */
export function noGrad<R>(fn: () => R): R {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Entries currently on the tape (for tests and leak checks). */
export function tapeLength(): number {
  return tape.length;
}

/**
 * Record an op for autograd if any input needs a gradient. `saved` are tensors the backward rule
 * reads; the tape holds its own references to them, so callers may dispose them freely.
 */
export function recordOp(name: string, inputs: readonly Tensor[], outputs: readonly Tensor[], backward: BackwardFn, saved: readonly Tensor[] = []): void {
  if (!gradEnabled || !inputs.some((x) => x.requiresGrad)) return;
  const entry: TapeEntry = { name, inputs, outputs, saved: saved.map((s) => s.shareRef()), backward };
  for (const o of outputs) {
    o.requiresGrad = true;
    o.creator = entry;
  }
  tape.push(entry);
}

/** Drop the whole tape and the tensors it saved. */
export function clearTape(): void {
  for (const e of tape) {
    for (const s of e.saved) s.dispose();
    for (const o of e.outputs) o.creator = undefined;
  }
  tape = [];
}

/**
 * Gradients of `output` (a scalar, or any tensor with `gradient` given) with respect to every leaf
 * that requires a gradient, accumulated into their `.grad`. Frees the tape afterwards.
 */
export function backward(output: Tensor, gradient?: Tensor<'f32'>): void {
  if (!output.requiresGrad) throw new Error(`backward(): ${output.describe()} does not require a gradient (no input of its graph requires one)`);
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
    const last = output.creator ? tape.indexOf(output.creator) : -1;
    for (let i = last; i >= 0; i--) {
      const e = tape[i];
      const outGrads = e.outputs.map((o) => grads.get(o) ?? null);
      if (outGrads.every((g) => g === null)) continue;
      const needs = e.inputs.map((x) => x.requiresGrad);
      tidy(() => {
        const res = noGrad(() => e.backward(outGrads, e.saved, needs));
        e.inputs.forEach((x, k) => {
          const g = res[k];
          if (!needs[k] || !g) return;
          if (!sameShape(g.shape, x.shape)) {
            throw new Error(`internal: backward of ${e.name} gave a gradient of shape ${fmt(g.shape)} for an input of shape ${fmt(x.shape)}`);
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
    clearTape();
  }
}

function accumulate(grads: Map<Tensor, Tensor<'f32'>>, x: Tensor, g: Tensor<'f32'>): void {
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
