// Which tensors are still alive, and where each was made: a debug switch for leaks (a forward whose
// result is never disposed, a graph never backwarded, a read helper's result kept). Off by default, so
// tensors cost nothing extra; trackTensors() or SMKD_LEAK_REPORT=1 turns it on, and with the variable
// the report of what is left goes to stderr when the process exits.
import type { Tensor } from './tensor.js';

/** Read by Tensor's constructor and dispose(): one boolean test when off. */
export const leakTracking = { on: false };
const live = new Map<Tensor, string>();

/** This engine's folders (engine/ and kernels/, in the sources or in dist/), as stack frames print them. */
const OWN = ['./', '../kernels/'].flatMap((rel) => {
  const u = new URL(rel, import.meta.url);
  return [u.href, decodeURIComponent(u.pathname)];
});

/** The first stack frame outside the engine: the line of your code (or of model/) that made the tensor. */
function callSite(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  const outside = frames.find((f) => !OWN.some((dir) => f.includes(dir)) && !/\(node:|^\s*at node:/.test(f));
  return (outside ?? frames[frames.length - 1] ?? '?').trim().replace(/^at /, '');
}

export function noteTensor(t: Tensor): void {
  live.set(t, callSite());
}

export function forgetTensor(t: Tensor): void {
  live.delete(t);
}

/** Start (or stop) recording where each new tensor is made; tensors made before are not seen. */
export function trackTensors(on = true): void {
  leakTracking.on = on;
  if (!on) live.clear();
}

/** The tensors made while tracking and not yet disposed, oldest first. */
export function liveTensors(): { tensor: string; madeAt: string }[] {
  return [...live].map(([t, madeAt]) => ({ tensor: t.describe(), madeAt }));
}

/** liveTensors() grouped by where they were made, most first, in lines ('' when none). */
export function leakReport(): string {
  const sites = new Map<string, { count: number; example: string }>();
  for (const { tensor, madeAt } of liveTensors()) {
    const s = sites.get(madeAt);
    if (s) s.count++;
    else sites.set(madeAt, { count: 1, example: tensor });
  }
  if (sites.size === 0) return '';
  const lines = [...sites].sort((a, b) => b[1].count - a[1].count).map(([at, s]) => `  ${s.count} x ${s.example}${s.count > 1 ? ', ...' : ''} made at ${at}`);
  return `${live.size} tensor(s) still alive:\n${lines.join('\n')}`;
}
