// The Node platform: WebGPU through Dawn's Node bindings (the `webgpu` package), settings from
// environment variables, shaders dumped to files, and a GPU wait that gives a software driver the
// cores back. Importing this module installs it (engine/index.ts does), so the engine's other files
// never touch Node.
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { create, globals } from 'webgpu';
import { setPlatform, type Platform } from '../platform.js';

export const NO_ADAPTER_HELP =
  'No WebGPU adapter was found. On a machine without a GPU, Dawn needs a Vulkan driver: run `npm run setup` ' +
  '(as root on Debian/Ubuntu it installs libvulkan1 and mesa-vulkan-drivers; on Debian bookworm from ' +
  "bookworm-backports, because Dawn refuses the stock Mesa 22.3 lavapipe), or install your GPU vendor's Vulkan driver.";

// GPUBufferUsage, GPUMapMode and the other WebGPU globals a browser has, for the runtime.
Object.assign(globalThis, globals);

// Dawn's instance must outlive every device made from it: if it is garbage-collected, pending
// callbacks run against freed memory and the process aborts.
let instance: GPU | undefined;

function dawnFlags(): string[] {
  // SMKD_DAWN_FLAGS lets a user pick a backend or adapter ("backend=vulkan adapter=...").
  return (process.env.SMKD_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean);
}

/**
 * Run `f` with file descriptor 2 on /dev/null, unless SMKD_DAWN_WARNINGS=1.
 *
 * Dawn prints "Warning: maxDynamic{Uniform,Storage}BuffersPerPipelineLayout artificially reduced from
 * 1000000 to 16 ..." whenever it enumerates a Vulkan adapter whose driver reports more dynamic buffers
 * than Dawn supports (lavapipe reports 1000000): NormalizeLimits clamps the adapter's limits and says
 * so through dawn::WarningLog, an fprintf to stderr. It happens inside requestAdapter, before any limit
 * is requested, and no toggle controls it, so the only way to silence it is the descriptor itself.
 * Node cannot dup() a descriptor: the original is reopened through /proc/self/fd/2 afterwards, which
 * is the same stream only for a terminal, a pipe, a character device or a file opened for appending;
 * on a socket or a truncating file (whose shared offset a reopened descriptor would not keep) the
 * warnings are left alone. `f` must do its printing synchronously (requestAdapter does).
 */
function quietStderr<T>(f: () => T): T {
  if (process.env.SMKD_DAWN_WARNINGS === '1' || process.platform !== 'linux') return f();
  let saved: number;
  try {
    // Descriptors 0 and 1 open, so that 2 is the lowest free one once closed.
    fstatSync(0);
    fstatSync(1);
    const st = fstatSync(2);
    const O_APPEND = 0o2000;
    const appending = st.isFile() && (parseInt(/flags:\s*([0-7]+)/.exec(readFileSync('/proc/self/fdinfo/2', 'utf8'))?.[1] ?? '0', 8) & O_APPEND) !== 0;
    if (!(st.isCharacterDevice() || st.isFIFO() || appending)) return f();
    saved = openSync('/proc/self/fd/2', 'a');
  } catch {
    return f();
  }
  closeSync(2);
  const nul = openSync('/dev/null', 'a');
  try {
    return f();
  } finally {
    closeSync(nul);
    // The lowest free descriptor: 2 again.
    openSync(`/proc/self/fd/${saved}`, 'a');
    closeSync(saved);
  }
}

// Dawn's Node bindings poll for GPU events on the main thread while a promise is pending, which
// competes with a software driver for the CPU. Sleeping in short slices between polls gives the
// driver the cores back (measured 1.4-1.6x faster on lavapipe with 2 cores).
const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepingWait<T>(p: Promise<T>): Promise<T> {
  let done = false;
  const tick = (): void => {
    if (done) return;
    Atomics.wait(sleeper, 0, 0, 1);
    setImmediate(tick);
  };
  setImmediate(tick);
  return p.finally(() => {
    done = true;
  });
}

export const nodePlatform: Platform = {
  name: 'node',
  async requestAdapter() {
    let adapter: GPUAdapter | null = null;
    try {
      instance ??= create(dawnFlags());
      const gpu = instance;
      adapter = await quietStderr(() => gpu.requestAdapter({ powerPreference: 'high-performance' }));
    } catch (err) {
      throw new Error(`${NO_ADAPTER_HELP}\n(Dawn said: ${(err as Error).message})`);
    }
    if (!adapter) throw new Error(NO_ADAPTER_HELP);
    return adapter;
  },
  env: (name) => process.env[name],
  wait: sleepingWait,
  // With SMKD_DUMP_SHADERS=<dir>, each new kernel's WGSL goes to <dir>/<key>.wgsl (read per call, so tests can set it);
  // with SMKD_KERNEL_LOG=<file>, a JSON line { key, code } is appended to <file> (the kernels a test run used, for
  // scripts/compile-budget.ts).
  dumpShader(key, code) {
    const dir = process.env.SMKD_DUMP_SHADERS;
    if (dir) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, `${key.replace(/[^\w.+-]/g, '_')}.wgsl`), code);
    }
    const log = process.env.SMKD_KERNEL_LOG;
    if (log) appendFileSync(log, `${JSON.stringify({ key, code })}\n`);
  },
};

setPlatform(nodePlatform);
