// inference(fn): the leak-proof way to get values out of the GPU. `await noGrad(() => tidy(fn)).toArray()`
// keeps fn's result alive (tidy hands it to the caller, who has only a promise); this runs fn with no
// autograd, reads what it returns, and frees every tensor it made, result included, even when it throws.
import { noGrad } from './autograd.js';
import { tidy } from './scope.js';
import { Tensor, type DType, type TypedArrayOf } from './tensor.js';

/** What inference() returns for fn's result: each tensor as its host array, in the same tuple or object. */
export type HostValues<R> = R extends Tensor<infer D> ? TypedArrayOf<D> : { [K in keyof R]: R[K] extends Tensor<infer D extends DType> ? TypedArrayOf<D> : R[K] };

/** Run `fn` without autograd; read its tensor, or the tensors of its array or object, to the host; free them all. */
export async function inference<R>(fn: () => R): Promise<HostValues<R>> {
  const result = noGrad(() => tidy(fn));
  const tensors: Tensor[] = [];
  const read = async (v: unknown): Promise<unknown> => {
    if (v instanceof Tensor) {
      tensors.push(v);
      return v.toArray();
    }
    return v;
  };
  try {
    if (result instanceof Tensor) return (await read(result)) as HostValues<R>;
    if (Array.isArray(result)) return (await Promise.all(result.map(read))) as unknown as HostValues<R>;
    if (result !== null && typeof result === 'object') {
      const entries = await Promise.all(Object.entries(result).map(async ([k, v]) => [k, await read(v)] as const));
      return Object.fromEntries(entries) as unknown as HostValues<R>;
    }
    return result as HostValues<R>;
  } finally {
    for (const t of tensors) t.dispose();
  }
}
