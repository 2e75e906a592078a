// The one WebGPU adapter and device of the process, acquired once through Dawn's Node bindings.
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { create, globals } from 'webgpu';

export interface DeviceInfo {
  vendor: string;
  architecture: string;
  description: string;
  isSoftware: boolean;
  features: string[];
  limits: Record<string, number>;
}

export interface Gpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  info: DeviceInfo;
  hasF16: boolean;
  hasTimestamps: boolean;
  hasSubgroups: boolean;
}

// Features we use when the adapter offers them.
const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups' as GPUFeatureName];

// Limits we raise to the adapter's maximum: big models need big bindings and workgroup memory.
const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
] as const;

export const NO_ADAPTER_HELP =
  'No WebGPU adapter was found. On a machine without a GPU, Dawn needs a Vulkan driver: run `npm run setup` ' +
  '(as root on Debian/Ubuntu it installs libvulkan1 and mesa-vulkan-drivers; on Debian bookworm from ' +
  "bookworm-backports, because Dawn refuses the stock Mesa 22.3 lavapipe), or install your GPU vendor's Vulkan driver.";

let gpuPromise: Promise<Gpu> | undefined;
// Dawn's instance must outlive every device made from it: if it is garbage-collected, pending
// callbacks run against freed memory and the process aborts.
let instance: GPU | undefined;
let lostReason: string | undefined;
const lostListeners: ((reason: string) => void)[] = [];

/** The device, acquired on first call and shared by every later caller. */
export function getGpu(): Promise<Gpu> {
  gpuPromise ??= acquire();
  return gpuPromise;
}

/** Called when the device is lost: the runtime uses it to fail the next op with the reason. */
export function onDeviceLost(listener: (reason: string) => void): void {
  lostListeners.push(listener);
  if (lostReason !== undefined) listener(lostReason);
}

function dawnFlags(): string[] {
  // SMKD_DAWN_FLAGS lets a user pick a backend or adapter ("backend=vulkan adapter=...").
  const extra = (process.env.SMKD_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean);
  return extra;
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

// Pipelines Dawn is compiling on its threads: an exit in the middle of one can make the compiler print a dump.
const compiling = new Set<Promise<unknown>>();

/** Before the process exits: wait for the pipelines still compiling, then destroy the device. */
export async function releaseGpu(): Promise<void> {
  const gpu = await gpuPromise?.catch(() => undefined);
  if (!gpu) return;
  await Promise.allSettled([...compiling]);
  gpu.device.destroy();
}

async function acquire(): Promise<Gpu> {
  Object.assign(globalThis, globals);
  let adapter: GPUAdapter | null = null;
  try {
    instance = create(dawnFlags());
    const gpu = instance;
    adapter = await quietStderr(() => gpu.requestAdapter({ powerPreference: 'high-performance' }));
  } catch (err) {
    throw new Error(`${NO_ADAPTER_HELP}\n(Dawn said: ${(err as Error).message})`);
  }
  if (!adapter) throw new Error(NO_ADAPTER_HELP);

  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter!.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const compile = device.createComputePipelineAsync.bind(device);
  device.createComputePipelineAsync = (descriptor) => {
    const p = compile(descriptor);
    compiling.add(p);
    const done = (): void => void compiling.delete(p);
    p.then(done, done);
    return p;
  };
  void device.lost.then((info) => {
    // A deliberate destroy() at exit is not a loss worth reporting.
    if (info.reason === 'destroyed') return;
    lostReason = `${info.reason}: ${info.message}`;
    for (const l of lostListeners) l(lostReason);
  });

  const ai = adapter.info;
  const limits: Record<string, number> = {};
  for (const key in device.limits) {
    const v = (device.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') limits[key] = v;
  }
  const description = ai.description || ai.device || '';
  const info: DeviceInfo = {
    vendor: ai.vendor,
    architecture: ai.architecture,
    description,
    isSoftware: /llvmpipe|lavapipe|swiftshader|software/i.test(`${description} ${ai.vendor} ${ai.architecture}`),
    features: [...device.features].sort(),
    limits,
  };
  return {
    device,
    adapter,
    info,
    hasF16: device.features.has('shader-f16'),
    hasTimestamps: device.features.has('timestamp-query'),
    hasSubgroups: device.features.has('subgroups' as GPUFeatureName),
  };
}

/** A one-line name for the adapter, used in reports and file names. */
export function adapterName(info: DeviceInfo): string {
  return [info.vendor, info.architecture, info.description].filter(Boolean).join(' ').trim() || 'unknown adapter';
}

/** A human-readable report of the adapter: what `npm run info` and `smkd info` print. */
export function describeGpu(gpu: Gpu): string {
  const i = gpu.info;
  const keyLimits = [
    'maxBufferSize',
    'maxStorageBufferBindingSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
    'minStorageBufferOffsetAlignment',
    'minUniformBufferOffsetAlignment',
  ];
  return [
    `adapter:      ${adapterName(i)}`,
    `software:     ${i.isSoftware ? 'yes (CPU emulation: expect CPU-class speed)' : 'no'}`,
    `f16 / timestamps / subgroups: ${gpu.hasF16 ? 'yes' : 'no'} / ${gpu.hasTimestamps ? 'yes' : 'no'} / ${gpu.hasSubgroups ? 'yes' : 'no'}`,
    `features:     ${i.features.join(', ')}`,
    'limits:',
    ...keyLimits.filter((k) => k in i.limits).map((k) => `  ${k.padEnd(36)} ${i.limits[k]}`),
  ].join('\n');
}
