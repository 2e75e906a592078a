// The runtime: ops record dispatches into a pending batch; flush() compiles what is new, encodes the
// batch into one command buffer and submits it. Nothing is read back in the middle of a computation.
import type { KernelSource } from '../kernels/kernel.js';
import { BufferPool, sizeClass, type PooledBuffer, type PoolStats } from './buffer-pool.js';
import { CompileHelper } from './compile-helper.js';
import { getGpu, onDeviceLost, type Gpu, type GpuOptions } from './device.js';
import { platform } from './platform.js';
import type { DispatchProfiler } from './profiler.js';

export interface Binding {
  buffer: GPUBuffer;
  offset: number;
  size: number;
  /** Set when the binding comes from the pool, so it can be marked as used by this batch. */
  pooled?: PooledBuffer;
}

interface DispatchCmd {
  kind: 'dispatch';
  kernel: KernelSource;
  uniforms: ArrayBuffer;
  bindings: Binding[];
  groups: [number, number, number];
  label: string;
  /** Recorded while autograd's backward() ran. */
  backward: boolean;
}

interface CopyCmd {
  kind: 'copy';
  src: Binding;
  dst: GPUBuffer;
  dstOffset: number;
  size: number;
}

type Command = DispatchCmd | CopyCmd;

const MAP_READ_COPY_DST = 0x0001 | 0x0008;
const UNIFORM_COPY_DST = 0x0040 | 0x0008;

/** The state the engine keeps per process. Created by `init()`. */
export class Runtime {
  readonly pool: BufferPool;
  private pending: Command[] = [];
  /** Id of the batch ops record into now; batches up to `submitted` are on the queue. */
  private batch = 1;
  private submitted = 0;
  private pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private ready = new Map<string, GPUComputePipeline>();
  private uniformBuffer: GPUBuffer | undefined;
  // Bind groups by pipeline, uniform offset and bound ranges: the pool hands a step the same buffers
  // every step, so after the first step every dispatch finds its bind group here instead of creating one.
  // Keyed by a hash of the ranges' integer ids, each bucket checked element by element (no string built
  // per dispatch). Most of the 5.4 ms of bind-group JavaScript an omniglot step once spent was creations
  // (the pool's drift, engine/buffer-pool.ts); with those gone it is 2.2 ms.
  private readonly bindGroups = new Map<number, { ids: number[]; group: GPUBindGroup }[]>();
  private bindGroupCount = 0;
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private readonly kernelIds = new Map<string, number>();
  // Kernels dispatched at least once, and the second device that compiles the back half of a slow batch's new ones.
  private readonly dispatched = new Set<string>();
  private helper: CompileHelper | undefined;
  private readonly groupIds: number[] = [];
  private readBuffers = new Map<number, GPUBuffer[]>();
  private flushChain: Promise<void> = Promise.resolve();
  private soon: Promise<void> | undefined;
  private lost: string | undefined;
  private readonly uniformAlign: number;
  /**
   * Milliseconds from asking for each pipeline to having it, by kernel key: its compile time, or more
   * where compiles queued behind one another (an upper bound; scripts/compile-budget.ts times them alone).
   */
  readonly compileMs = new Map<string, number>();
  /** Dispatches recorded since init(), for tests and profiling. */
  dispatchCount = 0;
  submitCount = 0;
  /** When set, every dispatch runs in a timed pass of its own (see engine/profiler.ts). */
  profiler: DispatchProfiler | undefined;
  /** Non-zero while autograd's backward() records (dispatches are tagged with it for the profiler). */
  backwardDepth = 0;

  constructor(readonly gpu: Gpu) {
    const lim = gpu.device.limits;
    this.pool = new BufferPool(gpu.device, lim.maxBufferSize);
    this.uniformAlign = lim.minUniformBufferOffsetAlignment;
    onDeviceLost((reason) => (this.lost = reason));
  }

  get device(): GPUDevice {
    return this.gpu.device;
  }

  /**
   * The largest storage buffer asked for since init() or since the caller last reset it (bytes, and the
   * label of the op or upload): what a training configuration's size check (train/preflight.ts) is tested against.
   */
  largestAllocation = { bytes: 0, label: '' };

  /** A storage buffer for an op's output; `label` names the op for error messages. */
  alloc(bytes: number, label: string): PooledBuffer {
    if (bytes > this.largestAllocation.bytes) this.largestAllocation = { bytes, label };
    const max = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > max) throw new Error(`${label}: a tensor of ${bytes} bytes exceeds this adapter's maxStorageBufferBindingSize (${max} bytes)`);
    return this.pool.acquire(bytes, label);
  }

  /** A storage buffer filled from host memory now, safe from the pending batch's reads and writes. */
  upload(data: ArrayBufferView, label: string): PooledBuffer {
    this.checkAlive(label);
    if (data.byteLength > this.largestAllocation.bytes) this.largestAllocation = { bytes: data.byteLength, label };
    const b = this.pool.acquire(data.byteLength, label, this.submitted);
    const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    // writeBuffer needs a multiple of 4 bytes; every dtype we store is 4 bytes wide.
    this.device.queue.writeBuffer(b.buffer, 0, bytes);
    b.batch = this.batch;
    return b;
  }

  release(b: PooledBuffer): void {
    this.pool.release(b);
  }

  /** Record one dispatch. Binding 0 of the kernel is its uniform block, bindings 1.. are `bindings`. */
  dispatch(kernel: KernelSource, uniforms: ArrayBuffer, bindings: Binding[], groups: [number, number, number], label: string): void {
    this.checkAlive(label);
    if (groups[0] === 0 || groups[1] === 0 || groups[2] === 0) return;
    const lim = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups.some((g) => g > lim)) {
      throw new Error(`${label}: launch of [${groups}] workgroups exceeds the limit of ${lim} per dimension`);
    }
    for (const b of bindings) if (b.pooled) b.pooled.batch = this.batch;
    if (!this.pipelines.has(kernel.key)) void this.compile(kernel, label);
    this.pending.push({ kind: 'dispatch', kernel, uniforms, bindings, groups, label, backward: this.backwardDepth > 0 });
    this.dispatchCount++;
  }

  /**
   * Compile a pipeline ahead of its first use (asynchronously, so compiles overlap). In Node, with
   * SMKD_DUMP_SHADERS=<dir> set, each new kernel's WGSL is written to <dir>/<key>.wgsl first.
   */
  compile(kernel: KernelSource, label = kernel.key): Promise<GPUComputePipeline> {
    let p = this.pipelines.get(kernel.key);
    if (p) return p;
    platform().dumpShader?.(kernel.key, kernel.code);
    const module = this.device.createShaderModule({ code: kernel.code, label: kernel.key });
    const t0 = performance.now();
    p = this.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: kernel.key }).then(
      (pipe) => {
        this.compileMs.set(kernel.key, performance.now() - t0);
        this.ready.set(kernel.key, pipe);
        return pipe;
      },
      async (err: unknown) => {
        const info = await module.getCompilationInfo();
        const msgs = info.messages.map((m) => `  ${m.type} at line ${m.lineNum}:${m.linePos}: ${m.message}${quoteSource(kernel.code, m.lineNum)}`).join('\n');
        throw new Error(`${label}: kernel ${kernel.key} failed to compile: ${(err as Error).message}\n${msgs}`);
      },
    );
    // Avoid an unhandled-rejection crash before flush() gets to report it.
    p.catch(() => undefined);
    this.pipelines.set(kernel.key, p);
    return p;
  }

  /**
   * Submit everything recorded so far; resolves when it is on the queue and validated. The batch is
   * what was recorded before this call: work recorded afterwards (while an earlier batch waits for
   * its pipelines, or while the GPU runs it) goes into the next one, so a caller can record the next
   * step while the GPU runs this one and still read this one's results as soon as they are done.
   */
  flush(): Promise<void> {
    const cmds = this.pending;
    this.pending = [];
    const batch = cmds.length ? this.batch++ : 0;
    const next = this.flushChain.then(() => this.flushNow(cmds, batch));
    this.flushChain = next.catch(() => undefined);
    return next;
  }

  /**
   * A flush at the end of the current synchronous run of JavaScript: reads issued together (the losses
   * of a step, read with Promise.all) share one batch and one submit instead of one each.
   */
  private flushSoon(): Promise<void> {
    this.soon ??= Promise.resolve().then(() => {
      this.soon = undefined;
      return this.flush();
    });
    return this.soon;
  }

  /** Record a copy of `size` bytes between two bindings, in order with the dispatches around it. */
  copy(src: Binding, dst: Binding, size: number, label: string): void {
    this.checkAlive(label);
    if (size > src.size || size > dst.size) throw new Error(`${label}: copy of ${size} bytes exceeds a binding (${src.size} -> ${dst.size})`);
    for (const b of [src, dst]) if (b.pooled) b.pooled.batch = this.batch;
    this.pending.push({ kind: 'copy', src, dst: dst.buffer, dstOffset: dst.offset, size });
  }

  /** Copy a binding's bytes to the host. Flushes the pending batch first. */
  async read(src: Binding, label: string): Promise<ArrayBuffer> {
    this.checkAlive(label);
    const size = Math.ceil(src.size / 4) * 4;
    const cls = sizeClass(size);
    const dst = this.readBuffers.get(cls)?.pop() ?? this.device.createBuffer({ size: cls, usage: MAP_READ_COPY_DST, label: 'readback' });
    if (src.pooled) src.pooled.batch = this.batch;
    this.pending.push({ kind: 'copy', src, dst, dstOffset: 0, size });
    await this.flushSoon();
    await gpuWait(dst.mapAsync(GPUMapMode.READ, 0, size));
    const out = dst.getMappedRange(0, size).slice(0);
    dst.unmap();
    let list = this.readBuffers.get(cls);
    if (!list) this.readBuffers.set(cls, (list = []));
    list.push(dst);
    return out;
  }

  /** Resolves when all submitted work has finished on the GPU. */
  async sync(): Promise<void> {
    await this.flush();
    await gpuWait(this.device.queue.onSubmittedWorkDone());
  }

  poolStats(): PoolStats {
    return this.pool.getStats();
  }

  private checkAlive(label: string): void {
    if (this.lost) throw new Error(`${label}: the GPU device was lost (${this.lost}); restart the process to get a new device`);
  }

  private async flushNow(cmds: Command[], batch: number): Promise<void> {
    if (cmds.length === 0) return;
    const dispatches = cmds.filter((c): c is DispatchCmd => c.kind === 'dispatch');
    const pipes = new Map<string, GPUComputePipeline>();
    for (const d of dispatches) {
      const key = d.kernel.key;
      if (pipes.has(key)) continue;
      pipes.set(key, this.ready.get(key) ?? (await gpuWait(this.compile(d.kernel, d.label))));
    }

    const device = this.device;
    const uniformBytes = this.packUniforms(dispatches);
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    const enc = device.createCommandEncoder({ label: `batch ${batch}` });
    const profiler = this.profiler;
    profiler?.begin(dispatches.length);
    let pass: GPUComputePassEncoder | undefined;
    let uOffset = 0;
    for (const c of cmds) {
      if (c.kind === 'copy') {
        pass?.end();
        pass = undefined;
        enc.copyBufferToBuffer(c.src.buffer, c.src.offset, c.dst, c.dstOffset, c.size);
        continue;
      }
      if (profiler) {
        pass?.end();
        pass = enc.beginComputePass(profiler.pass({ label: c.label, kernel: c.kernel.key, uniforms: c.uniforms, groups: c.groups, backward: c.backward }));
      }
      pass ??= enc.beginComputePass();
      const pipe = pipes.get(c.kernel.key)!;
      const uSize = Math.max(c.uniforms.byteLength, 16);
      pass.setPipeline(pipe);
      pass.setBindGroup(0, this.bindGroup(c, pipe, uOffset, uSize));
      uOffset += alignUp(uSize, this.uniformAlign);
      pass.dispatchWorkgroups(c.groups[0], c.groups[1], c.groups[2]);
    }
    pass?.end();
    profiler?.end(enc);
    if (uniformBytes) device.queue.writeBuffer(this.uniformBuffer!, 0, uniformBytes);
    device.queue.submit([enc.finish()]);
    this.warmAhead(dispatches);
    this.submitted = batch;
    this.submitCount++;
    const validation = device.popErrorScope();
    const oom = device.popErrorScope();
    const [v, o] = await gpuWait(Promise.all([validation, oom]));
    const err = v ?? o;
    if (err) {
      const ops = dispatches.map((d) => d.label);
      const tail = ops.slice(-8).join('; ');
      const kind = v ? 'WebGPU validation error' : 'GPU out of memory';
      const mem = o ? ` (pool: ${JSON.stringify(this.pool.getStats())})` : '';
      throw new Error(`${kind} in a batch of ${ops.length} ops: ${err.message}${mem}\nlast ops of the batch: ${tail}`);
    }
  }

  /**
   * On a software adapter in Node, when a batch brings HELPER_MIN_KERNELS or more new kernels and is still
   * running HELPER_DELAY_MS after its submit (lavapipe compiling them one by one; a warm shader cache runs
   * the first step's batch in ~0.3 s), a second device compiles the back half of them, last first
   * (engine/compile-helper.ts). SMKD_COMPILE_HELPER=0 turns it off.
   */
  private warmAhead(dispatches: DispatchCmd[]): void {
    const fresh: KernelSource[] = [];
    for (const d of dispatches) {
      if (this.dispatched.has(d.kernel.key)) continue;
      this.dispatched.add(d.kernel.key);
      fresh.push(d.kernel);
    }
    const p = platform();
    if (fresh.length < HELPER_MIN_KERNELS || !this.gpu.info.isSoftware || p.name !== 'node' || p.env('SMKD_COMPILE_HELPER') === '0') return;
    let finished = false;
    void this.device.queue.onSubmittedWorkDone().then(
      () => (finished = true),
      () => (finished = true),
    );
    const back = fresh.slice(Math.ceil(fresh.length / 2)).reverse();
    setTimeout(() => {
      // The helper's own work is awaited by releaseGpu (CompileHelper.warm tracks it).
      if (!finished && !this.lost) void (this.helper ??= new CompileHelper()).warm(back);
    }, HELPER_DELAY_MS);
  }

  private bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }

  /** The bind group of one dispatch, made once per distinct set of bound ranges. */
  private bindGroup(c: DispatchCmd, pipe: GPUComputePipeline, uOffset: number, uSize: number): GPUBindGroup {
    const u = this.uniformBuffer!;
    let kernelId = this.kernelIds.get(c.kernel.key);
    if (kernelId === undefined) this.kernelIds.set(c.kernel.key, (kernelId = this.kernelIds.size + 1));
    const ids = this.groupIds;
    ids.length = 0;
    ids.push(kernelId, this.bufferId(u), uOffset, uSize);
    for (const b of c.bindings) ids.push(this.bufferId(b.buffer), b.offset, b.size);
    // FNV-1a over the ids.
    let h = 0x811c9dc5;
    for (const v of ids) h = Math.imul(h ^ v, 0x01000193);
    let bucket = this.bindGroups.get(h);
    if (bucket) {
      for (const e of bucket) if (e.ids.length === ids.length && e.ids.every((v, i) => v === ids[i])) return e.group;
    }
    let layout = this.layouts.get(c.kernel.key);
    if (!layout) this.layouts.set(c.kernel.key, (layout = pipe.getBindGroupLayout(0)));
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: u, offset: uOffset, size: uSize } }];
    c.bindings.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: b.buffer, offset: b.offset, size: b.size } }));
    const group = this.device.createBindGroup({ layout, entries, label: c.label });
    // Ranges of buffers the pool has since destroyed never come back (new buffers get new ids); a bound keeps
    // the stale entries from piling up.
    if (this.bindGroupCount >= BIND_GROUP_CACHE) {
      this.bindGroups.clear();
      this.bindGroupCount = 0;
      bucket = undefined;
    }
    if (!bucket) this.bindGroups.set(h, (bucket = []));
    bucket.push({ ids: ids.slice(), group });
    this.bindGroupCount++;
    return group;
  }

  private packUniforms(dispatches: DispatchCmd[]): Uint8Array<ArrayBuffer> | undefined {
    let total = 0;
    for (const d of dispatches) total += alignUp(Math.max(d.uniforms.byteLength, 16), this.uniformAlign);
    if (total === 0) return undefined;
    if (!this.uniformBuffer || this.uniformBuffer.size < total) {
      this.uniformBuffer?.destroy();
      this.uniformBuffer = this.device.createBuffer({ size: sizeClass(total), usage: UNIFORM_COPY_DST, label: 'uniforms' });
    }
    const bytes = new Uint8Array(total);
    let off = 0;
    for (const d of dispatches) {
      bytes.set(new Uint8Array(d.uniforms), off);
      off += alignUp(Math.max(d.uniforms.byteLength, 16), this.uniformAlign);
    }
    return bytes;
  }
}

/** Lines `line - 1 .. line + 1` (1-based) of `code`, numbered, the offending one marked; '' without a line. */
export function quoteSource(code: string, line: number): string {
  if (!(line > 0)) return '';
  const lines = code.split('\n');
  const out: string[] = [];
  for (let i = Math.max(1, line - 1); i <= Math.min(lines.length, line + 1); i++) out.push(`    ${i === line ? '>' : ' '} ${String(i).padStart(4)} | ${lines[i - 1]}`);
  return out.length ? `\n${out.join('\n')}` : '';
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/**
 * Resolve `p`, letting the GPU make progress meanwhile: in Node, Dawn's events are polled with short
 * sleeps between polls (engine/node/dawn.ts); a browser needs nothing.
 */
export function gpuWait<T>(p: Promise<T>): Promise<T> {
  return platform().wait(p);
}

let runtime: Runtime | undefined;
let runtimePromise: Promise<Runtime> | undefined;

/**
 * Acquire the device and build the runtime. Every entry point awaits this once before using ops. A page
 * that already has a WebGPU device (or adapter, or entry point) passes it on the first call: `init({ device })`, `init({ gpu })`.
 */
export function init(options: GpuOptions = {}): Promise<Runtime> {
  // getGpu refuses a device passed after the first call, and otherwise returns the one device's promise.
  const gpu = getGpu(options);
  runtimePromise ??= gpu.then((g) => (runtime = new Runtime(g)));
  return runtimePromise;
}

/** New kernels in one batch from which the compile helper may be called on (a training step's first batch has ~55). */
const HELPER_MIN_KERNELS = 6;
/** How long a batch with new kernels may run before the compile helper starts on them. */
const HELPER_DELAY_MS = 600;

/** Bind groups kept at most (a training step needs a few hundred; an evaluation's varying shapes more). */
const BIND_GROUP_CACHE = 20000;

/** The runtime, for synchronous op code. Throws if `init()` has not completed. */
export function rt(): Runtime {
  if (!runtime) throw new Error('The engine is not initialised: `await init()` before creating tensors or running ops');
  return runtime;
}
