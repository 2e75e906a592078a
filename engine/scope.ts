// Scopes in the spirit of tfjs' tidy(): free every tensor a function created and did not return.
import type { Tensor } from './tensor.js';

const stack: Set<Tensor>[] = [];

/** Called by the Tensor constructor: the innermost open scope owns the new tensor. */
export function track(t: Tensor): void {
  stack[stack.length - 1]?.add(t);
}

/** Take a tensor out of every scope, so no scope frees it (the caller now owns it). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

/**
 * Run `fn`; dispose every tensor created inside it except those reachable from its result
 * (a tensor, an array or a plain object of them), which move to the enclosing scope.
 * `fn` must be synchronous: ops only record work, so nothing in a forward/backward pass awaits.
 */
export function tidy<R>(fn: () => R): R {
  const scope = new Set<Tensor>();
  stack.push(scope);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    // A failed fn leaks nothing: what it made so far is freed before the error goes on.
    for (const t of scope) t.dispose();
    throw e;
  } finally {
    stack.pop();
  }
  if (result instanceof Promise) throw new Error('tidy(): the function must be synchronous (it returned a Promise)');
  const kept = new Set<Tensor>();
  collect(result, kept, 0);
  const parent = stack[stack.length - 1];
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

function collect(v: unknown, out: Set<Tensor>, depth: number): void {
  if (v === null || typeof v !== 'object' || depth > 8) return;
  if (isTensor(v)) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) {
    for (const x of v) collect(x, out, depth + 1);
    return;
  }
  if (v instanceof Map) {
    for (const x of v.values()) collect(x, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collect(x, out, depth + 1);
}

function isTensor(v: object): v is Tensor {
  return 'storage' in v && 'shape' in v && 'dtype' in v;
}
