// GPU-side time of everything a device executes between start() and stop(): every compute pass
// encoded meanwhile (ours or tfjs', which share the device) gets begin/end timestamp writes, and the
// time is the sum of the passes' durations. Neither the runtime nor tfjs needs to know: the
// device's createCommandEncoder is wrapped for the duration of the measurement.

const QUERIES = 64;
const QUERY_RESOLVE = 0x0200;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const MAP_READ = 0x0001;

interface Slot {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  read: GPUBuffer;
}

export class PassTimer {
  private free: Slot[] = [];
  private used: { slot: Slot; count: number }[] = [];
  private original: GPUDevice['createCommandEncoder'] | undefined;
  /** Passes that got no timestamps (more than QUERIES / 2 passes in one encoder, or already timed). */
  untimedPasses = 0;

  constructor(readonly device: GPUDevice) {}

  get running(): boolean {
    return this.original !== undefined;
  }

  start(): void {
    if (this.original) throw new Error('PassTimer.start: already running');
    const device = this.device;
    const original = device.createCommandEncoder;
    this.original = original;
    this.untimedPasses = 0;
    device.createCommandEncoder = (desc?: GPUCommandEncoderDescriptor): GPUCommandEncoder => {
      const enc = original.call(device, desc);
      this.instrument(enc);
      return enc;
    };
  }

  /** Stop instrumenting; resolves to the summed pass time in ms once every timed pass has finished. */
  async stop(wait: <T>(p: Promise<T>) => Promise<T>): Promise<number> {
    if (!this.original) throw new Error('PassTimer.stop: not running');
    // The wrapper is an own property over the prototype's method: deleting it restores the original.
    delete (this.device as { createCommandEncoder?: unknown }).createCommandEncoder;
    if (this.device.createCommandEncoder !== this.original) this.device.createCommandEncoder = this.original;
    this.original = undefined;
    const used = this.used;
    this.used = [];
    let ns = 0n;
    for (const { slot, count } of used) {
      await wait(slot.read.mapAsync(GPUMapMode.READ, 0, count * 8));
      const t = new BigUint64Array(slot.read.getMappedRange(0, count * 8));
      for (let i = 0; i < count; i += 2) if (t[i + 1] > t[i]) ns += t[i + 1] - t[i];
      slot.read.unmap();
      this.free.push(slot);
    }
    return Number(ns) / 1e6;
  }

  dispose(): void {
    for (const s of this.free) {
      s.querySet.destroy();
      s.resolve.destroy();
      s.read.destroy();
    }
    this.free = [];
  }

  private slot(): Slot {
    return (
      this.free.pop() ?? {
        querySet: this.device.createQuerySet({ type: 'timestamp', count: QUERIES }),
        resolve: this.device.createBuffer({ size: QUERIES * 8, usage: QUERY_RESOLVE | COPY_SRC }),
        read: this.device.createBuffer({ size: QUERIES * 8, usage: MAP_READ | COPY_DST }),
      }
    );
  }

  private instrument(enc: GPUCommandEncoder): void {
    let slot: Slot | undefined;
    let count = 0;
    const begin = enc.beginComputePass.bind(enc);
    const finish = enc.finish.bind(enc);
    enc.beginComputePass = (desc?: GPUComputePassDescriptor): GPUComputePassEncoder => {
      if (desc?.timestampWrites || count + 2 > QUERIES) {
        this.untimedPasses++;
        return begin(desc);
      }
      slot ??= this.slot();
      const timestampWrites = { querySet: slot.querySet, beginningOfPassWriteIndex: count, endOfPassWriteIndex: count + 1 };
      count += 2;
      return begin({ ...desc, timestampWrites });
    };
    enc.finish = (desc?: GPUCommandBufferDescriptor): GPUCommandBuffer => {
      if (slot && count > 0) {
        enc.resolveQuerySet(slot.querySet, 0, count, slot.resolve, 0);
        enc.copyBufferToBuffer(slot.resolve, 0, slot.read, 0, count * 8);
        this.used.push({ slot, count });
      }
      return finish(desc);
    };
  }
}
