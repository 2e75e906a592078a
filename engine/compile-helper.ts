// A second device that compiles kernels in parallel with the first on a software adapter.
//
// Why: lavapipe turns a pipeline into machine code (LLVM) at its first dispatch, on the one thread that
// runs the device's queue, so the ~55 kernels of a training step's first batch compile one after another
// on one core while the other idles: 12-15 s of the omniglot preset's first step with an empty Mesa shader
// cache. A second device has a queue thread of its own, and lavapipe's on-disk shader cache is shared by
// both: a kernel the helper has dispatched once is found in the cache when the main device reaches it
// (measured: 862 ms to compile a matmul variant on the helper, then 48 ms for its first dispatch on the
// main device; four kernels 4.7 s on one device against 2.8 s split over two; bench/NOTES.md, "Cold start").
//
// The helper takes the back half of a batch's new kernels, last first, while the main queue works from the
// front; each dispatches once with zeroed uniforms (every loop bound and size is 0) on small dummy buffers,
// a dispatch that computes nothing but makes lavapipe compile the same shader. Whatever goes wrong on the
// helper (no second device, a validation error) only costs the time it took: nothing it does touches the
// main device or its buffers.
import type { KernelSource } from '../kernels/kernel.js';
import { requestHelperDevice, trackCompile } from './device.js';
import { platform } from './platform.js';

/** Bytes of every dummy binding: at least any uniform block or fixed-size storage struct the kernels declare. */
const DUMMY_BYTES = 4096;
const UNIFORM = 0x0040;
const STORAGE = 0x0080;

export class CompileHelper {
  private device: Promise<GPUDevice | undefined> | undefined;
  private readonly warmed = new Set<string>();
  /** Kernels compiled on the helper so far (for tests and the bench notes). */
  compiled = 0;
  /** The last thing that went wrong on the helper, if anything. */
  error: string | undefined;

  /** Compile `kernels` on the helper device, in the order given; resolves when its queue has run them. */
  warm(kernels: readonly KernelSource[]): Promise<void> {
    const p = this.run(kernels);
    // The process must not exit while the helper's queue is compiling (releaseGpu waits for this).
    trackCompile(p);
    return p;
  }

  private async run(kernels: readonly KernelSource[]): Promise<void> {
    const todo = kernels.filter((k) => !this.warmed.has(k.key));
    for (const k of todo) this.warmed.add(k.key);
    if (todo.length === 0) return;
    const device = await this.open();
    if (!device) return;
    // Pipelines are created concurrently (Dawn compiles WGSL on its worker threads); the dispatches go to
    // the queue in the order given, each submitted as soon as its pipeline is ready.
    const pipes = todo.map((k) =>
      device.createComputePipelineAsync({ layout: 'auto', compute: { module: device.createShaderModule({ code: k.code, label: k.key }), entryPoint: 'main' }, label: k.key }),
    );
    for (const [i, k] of todo.entries()) {
      try {
        const pipe = await platform().wait(pipes[i]);
        const entries: GPUBindGroupEntry[] = bindingNumbers(k.code).map((binding) => ({
          binding,
          resource: { buffer: device.createBuffer({ size: DUMMY_BYTES, usage: binding === 0 ? UNIFORM : STORAGE }) },
        }));
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipe);
        pass.setBindGroup(0, device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries }));
        pass.dispatchWorkgroups(1, 1, 1);
        pass.end();
        device.queue.submit([enc.finish()]);
        this.compiled++;
      } catch (e) {
        this.error = `${k.key}: ${(e as Error).message}`;
      }
    }
    await platform().wait(device.queue.onSubmittedWorkDone());
  }

  private open(): Promise<GPUDevice | undefined> {
    this.device ??= (async () => {
      try {
        const device = await requestHelperDevice();
        device.onuncapturederror = (ev) => {
          this.error = ev.error.message;
        };
        return device;
      } catch (e) {
        this.error = (e as Error).message;
        return undefined;
      }
    })();
    return this.device;
  }
}

/** The `@binding(n)` numbers a kernel's WGSL declares (0 is its uniform block). */
export function bindingNumbers(code: string): number[] {
  return [...new Set([...code.matchAll(/@binding\((\d+)\)/g)].map((m) => Number(m[1])))].sort((a, b) => a - b);
}
