// Reverse-mode autograd: ops append entries to a tape in the forward pass; backward() (backward.ts) walks it back.
import type { Tensor } from './tensor.js';

/**
 * The backward rule of an op: given the gradients of its outputs (null for an output that got
 * none), the tensors it saved, and which inputs need a gradient, return one gradient per input.
 *
 * `into[k]`, where given, is where input k's gradient may be written instead of a new tensor: the
 * (still zero) gradient slot of a parameter in its arena. A rule that writes its kernel's output
 * there returns that tensor (or a view of it) and saves the copy into the arena, one dispatch per
 * parameter per step (64 of the omniglot step's 433); a rule may ignore it.
 */
export type BackwardFn = (
  grads: (Tensor<'f32'> | null)[],
  saved: Tensor[],
  needs: boolean[],
  into: readonly (Tensor<'f32'> | undefined)[],
  pending: PendingGrads,
) => (Tensor<'f32'> | null | undefined)[];

/**
 * The gradients inputs already hold from ops later in the graph (a tensor used more than once, such as
 * a residual stream). A rule may add `of[k]` to input k's gradient in its own kernel and call
 * `folded(k)`: the engine then takes the result as the whole gradient instead of adding the two in a
 * dispatch of its own (layerNorm's backward does this for the residual stream it normalises).
 */
export interface PendingGrads {
  readonly of: readonly (Tensor<'f32'> | undefined)[];
  folded(k: number): void;
}

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

/** The tape in recording order (backward.ts walks it in reverse). */
export function tapeEntries(): readonly TapeEntry[] {
  return tape;
}

/** Outputs of ops whose tape entries were freed: a gradient cannot flow through them any more. */
const freed = new WeakSet<Tensor>();

/** Whether `t` was made by an op whose graph a backward() has freed (PyTorch's "backward through the graph a second time"). */
export function graphFreed(t: Tensor): boolean {
  return !t.creator && freed.has(t);
}

/** Drop the whole tape and the tensors it saved. */
export function clearTape(): void {
  for (const e of tape) {
    for (const s of e.saved) s.dispose();
    for (const o of e.outputs) {
      o.creator = undefined;
      freed.add(o);
    }
  }
  tape = [];
}
