// Per-dispatch GPU time: while a profiler is attached to the runtime, every dispatch gets a compute
// pass of its own with begin/end timestamp writes, so each kernel's duration can be read back and
// attributed to the op label that launched it. Off by default: one pass per dispatch and the query
// resolves cost a little, and the adapter needs the 'timestamp-query' feature.

/** One timed dispatch: the op label, the kernel's cache key, its uniform block, its grid and its GPU time. */
export interface DispatchTiming {
  label: string;
  /** Recorded by autograd's backward(). */
  backward: boolean;
  kernel: string;
  uniforms: ArrayBuffer;
  groups: [number, number, number];
  ms: number;
}

interface Batch {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  read: GPUBuffer;
  entries: Omit<DispatchTiming, 'ms'>[];
}

const QUERY_RESOLVE = 0x0200;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const MAP_READ = 0x0001;
/** WebGPU's largest query set. */
const MAX_QUERIES = 4096;

export class DispatchProfiler {
  private batches: Batch[] = [];
  private current: Batch | undefined;

  constructor(readonly device: GPUDevice) {
    if (!device.features.has('timestamp-query')) {
      throw new Error("DispatchProfiler: this adapter has no 'timestamp-query' feature, so kernels cannot be timed one by one");
    }
  }

  /** Start a command buffer of at most `dispatches` timed dispatches. */
  begin(dispatches: number): void {
    const count = Math.min(MAX_QUERIES, Math.max(2, 2 * dispatches));
    this.current = {
      querySet: this.device.createQuerySet({ type: 'timestamp', count }),
      resolve: this.device.createBuffer({ size: count * 8, usage: QUERY_RESOLVE | COPY_SRC }),
      read: this.device.createBuffer({ size: count * 8, usage: MAP_READ | COPY_DST }),
      entries: [],
    };
  }

  /** The pass descriptor for the next dispatch (untimed once the query set is full). */
  pass(entry: Omit<DispatchTiming, 'ms'>): GPUComputePassDescriptor {
    const b = this.current;
    if (!b) throw new Error('DispatchProfiler.pass: begin() was not called');
    const i = b.entries.length;
    if (2 * i + 1 >= b.querySet.count) return {};
    b.entries.push(entry);
    return { timestampWrites: { querySet: b.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } };
  }

  /** Resolve this command buffer's timestamps into its read-back buffer (before `finish()`). */
  end(enc: GPUCommandEncoder): void {
    const b = this.current;
    this.current = undefined;
    if (!b || b.entries.length === 0) {
      b?.querySet.destroy();
      b?.resolve.destroy();
      b?.read.destroy();
      return;
    }
    const n = 2 * b.entries.length;
    enc.resolveQuerySet(b.querySet, 0, n, b.resolve, 0);
    enc.copyBufferToBuffer(b.resolve, 0, b.read, 0, n * 8);
    this.batches.push(b);
  }

  /** Every dispatch timed since the last collect(), in submission order. `wait` wraps GPU promises. */
  async collect(wait: <T>(p: Promise<T>) => Promise<T> = (p) => p): Promise<DispatchTiming[]> {
    const batches = this.batches;
    this.batches = [];
    const out: DispatchTiming[] = [];
    for (const b of batches) {
      const n = 2 * b.entries.length;
      await wait(b.read.mapAsync(GPUMapMode.READ, 0, n * 8));
      const t = new BigUint64Array(b.read.getMappedRange(0, n * 8));
      b.entries.forEach((e, i) => out.push({ ...e, ms: t[2 * i + 1] > t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) / 1e6 : 0 }));
      b.read.unmap();
      b.querySet.destroy();
      b.resolve.destroy();
      b.read.destroy();
    }
    return out;
  }
}
