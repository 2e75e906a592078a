// A size-bucketed pool of storage buffers: after the first training step, a step creates no new buffers.

// STORAGE | COPY_SRC | COPY_DST, as numbers: the GPUBufferUsage global exists only once Dawn's globals are installed.
const STORAGE_USAGE = 0x80 | 0x04 | 0x08;

export interface PoolStats {
  /** Buffers handed out and not yet released. */
  liveBuffers: number;
  liveBytes: number;
  /** The most bytes live at once since the pool was made or resetPeak() (what a run needs, free lists aside). */
  peakLiveBytes: number;
  /** Buffers waiting in the free lists. */
  freeBuffers: number;
  freeBytes: number;
  /** Buffers ever created by the pool. */
  created: number;
}

/** A pooled buffer. `batch` is the id of the last pending batch that referenced it. */
export interface PooledBuffer {
  buffer: GPUBuffer;
  size: number;
  batch: number;
  /** Filled by queue.writeBuffer (acquired with `safeUpTo`): kept in free lists of its own. */
  upload: boolean;
  /** Creation order: a free list hands out its lowest id first. */
  id: number;
}

/**
 * Size classes: multiples of 256 bytes up to 4 KiB, then 8 steps per power of two, so no buffer
 * wastes more than 12.5% of its size.
 */
export function sizeClass(bytes: number): number {
  const b = Math.max(bytes, 16);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 8;
  return Math.ceil(b / step) * step;
}

export class BufferPool {
  // A training step should bind the same buffers every step, so the runtime's bind groups are made once.
  // Handing out the most recently freed buffer (a stack) did not: a step's buffers depended on the order
  // of the previous step's releases, so the assignment drifted for ~70 steps of the omniglot preset, 30-130
  // new bind groups a step (~100 us each) until it settled. The lowest id among the free buffers depends
  // only on which are free, so a step repeats the last from the second on. Upload buffers have lists of
  // their own: which of them is safe to take depends on how far the queue has got (`safeUpTo`), a timing
  // that must not reach the other buffers (bench/NOTES.md, "Bind groups").
  private free = new Map<number, PooledBuffer[]>();
  private uploadFree = new Map<number, PooledBuffer[]>();
  private stats: PoolStats = { liveBuffers: 0, liveBytes: 0, peakLiveBytes: 0, freeBuffers: 0, freeBytes: 0, created: 0 };

  constructor(
    private device: GPUDevice,
    private maxBufferSize: number,
  ) {}

  /**
   * A buffer of at least `bytes` bytes. `safeUpTo`: take only buffers last used by a batch with that id
   * or lower (already submitted); needed for buffers written by queue.writeBuffer, which runs before
   * the dispatches of batches not yet submitted.
   */
  acquire(bytes: number, label: string, safeUpTo?: number): PooledBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBufferSize) {
      throw new Error(`${label}: a buffer of ${bytes} bytes exceeds this adapter's maxBufferSize (${this.maxBufferSize})`);
    }
    const upload = safeUpTo !== undefined;
    const limit = safeUpTo ?? Infinity;
    const list = (upload ? this.uploadFree : this.free).get(size);
    let found: PooledBuffer | undefined;
    if (list && list.length > 0) {
      const i = lowestId(list, limit);
      if (i >= 0) {
        found = list[i];
        list.splice(i, 1);
        this.stats.freeBuffers--;
        this.stats.freeBytes -= size;
      }
    }
    if (!found) {
      found = { buffer: this.device.createBuffer({ size, usage: STORAGE_USAGE, label }), size, batch: -1, upload, id: this.stats.created };
      this.stats.created++;
    }
    this.stats.liveBuffers++;
    this.stats.liveBytes += size;
    if (this.stats.liveBytes > this.stats.peakLiveBytes) this.stats.peakLiveBytes = this.stats.liveBytes;
    return found;
  }

  release(b: PooledBuffer): void {
    const free = b.upload ? this.uploadFree : this.free;
    let list = free.get(b.size);
    if (!list) free.set(b.size, (list = []));
    list.push(b);
    this.stats.liveBuffers--;
    this.stats.liveBytes -= b.size;
    this.stats.freeBuffers++;
    this.stats.freeBytes += b.size;
  }

  /** Destroy every free buffer (memory goes back to the driver). */
  trim(): void {
    for (const free of [this.free, this.uploadFree]) {
      for (const list of free.values()) for (const b of list) b.buffer.destroy();
      free.clear();
    }
    this.stats.freeBuffers = 0;
    this.stats.freeBytes = 0;
  }

  /** Start peakLiveBytes again from what is live now. */
  resetPeak(): void {
    this.stats.peakLiveBytes = this.stats.liveBytes;
  }

  getStats(): PoolStats {
    return { ...this.stats };
  }
}

/** Index of the buffer with the lowest id among those last used by batch `limit` or earlier; -1 if none. */
function lowestId(list: PooledBuffer[], limit: number): number {
  let best = -1;
  for (let i = 0; i < list.length; i++) if (list[i].batch <= limit && (best < 0 || list[i].id < list[best].id)) best = i;
  return best;
}
