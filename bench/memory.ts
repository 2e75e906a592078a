// Peak GPU memory of one op, from the buffer pool: the pool only counts live bytes, so this wraps
// its acquire() for the duration of the op to see the high-water mark between acquire and release.
import { rt, tidy } from '../engine/index.js';
import type { Variant } from './case.js';

export interface MemoryUse {
  /** Highest pool live bytes during the op minus live bytes before it (pool size classes, results included). */
  peakExtraBytes: number;
  /** Live bytes after the op's results were disposed minus before: 0 unless the op leaks or keeps state. */
  retainedBytes: number;
  /** Bytes of buffers the pool had to create for this op (0 once the pool is warm). */
  createdBytes: number;
}

/** Record one step of `v` (nothing is submitted) and report the pool's high-water mark. */
export function measureMemory(v: Variant): MemoryUse {
  const pool = rt().pool;
  const own = Object.prototype.hasOwnProperty.call(pool, 'acquire');
  if (own) throw new Error('measureMemory: the pool is already being watched');
  const acquire = pool.acquire;
  const before = pool.getStats().liveBytes;
  let peak = before;
  let createdBytes = 0;
  pool.acquire = function watched(bytes, label, safeUpTo) {
    const created = pool.getStats().created;
    const b = acquire.call(pool, bytes, label, safeUpTo);
    const s = pool.getStats();
    if (s.created > created) createdBytes += b.size;
    peak = Math.max(peak, s.liveBytes);
    return b;
  };
  try {
    for (const t of tidy(() => v.step())) t.dispose();
  } finally {
    delete (pool as { acquire?: unknown }).acquire;
  }
  return { peakExtraBytes: peak - before, retainedBytes: pool.getStats().liveBytes - before, createdBytes };
}
