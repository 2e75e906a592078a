// The one WebGPU adapter and device of the process, acquired once from the platform (engine/platform.ts:
// Dawn in Node, navigator.gpu in a browser) or taken from the caller (`init({ device })`).
import { platform } from './platform.js';

export interface DeviceInfo {
  vendor: string;
  architecture: string;
  description: string;
  isSoftware: boolean;
  features: string[];
  limits: Record<string, number>;
  /** The adapter's subgroup sizes where it reports them (the subgroups feature). */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

export interface Gpu {
  device: GPUDevice;
  /** Absent when the caller passed a device without its adapter. */
  adapter: GPUAdapter | undefined;
  info: DeviceInfo;
  hasF16: boolean;
  hasTimestamps: boolean;
  hasSubgroups: boolean;
}

/** A device or adapter of the caller's, instead of the platform's (a page that already has one). */
export interface GpuOptions {
  /** Use this device as it is (its features and limits are the caller's choice). */
  device?: GPUDevice;
  /** Create the device from this adapter (or describe `device` with it). */
  adapter?: GPUAdapter;
  /** Ask this WebGPU entry point (a `navigator.gpu`, or a Dawn instance) for the adapter, instead of the platform's. */
  gpu?: GPU;
}

// Features we use when the adapter offers them.
const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups' as GPUFeatureName];

// Limits we raise to the adapter's maximum: big models need big bindings and workgroup memory.
export const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
] as const;

let gpuPromise: Promise<Gpu> | undefined;
let lostReason: string | undefined;
const lostListeners: ((reason: string) => void)[] = [];

/** The device, acquired on first call and shared by every later caller (who may not pass options). */
export function getGpu(options: GpuOptions = {}): Promise<Gpu> {
  if (gpuPromise && (options.device || options.adapter || options.gpu)) {
    throw new Error('init({ device | adapter | gpu }): the engine already has its device; pass yours on the first call');
  }
  gpuPromise ??= acquire(options);
  return gpuPromise;
}

/** Called when the device is lost: the runtime uses it to fail the next op with the reason. */
export function onDeviceLost(listener: (reason: string) => void): void {
  lostListeners.push(listener);
  if (lostReason !== undefined) listener(lostReason);
}

// Pipelines the implementation is compiling on its threads: an exit in the middle of one can make the compiler print a dump.
const compiling = new Set<Promise<unknown>>();

/** The adapter of `gpu` (high-performance), or the platform's. */
async function requestAdapter(gpu: GPU | undefined): Promise<GPUAdapter> {
  if (!gpu) return platform().requestAdapter();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('init({ gpu }): requestAdapter() returned no adapter');
  return adapter;
}

/** The device with the features we use and the largest limits the adapter allows. */
async function requestDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  return adapter.requestDevice({ requiredFeatures, requiredLimits });
}

/** Devices of the compile helper (engine/compile-helper.ts), destroyed with the engine's. */
const helperDevices = new Set<GPUDevice>();

/** Work that compiles shaders on the implementation's threads, to wait for before the process exits. */
export function trackCompile(p: Promise<unknown>): void {
  compiling.add(p);
  const done = (): void => void compiling.delete(p);
  p.then(done, done);
}

/** A second device like the engine's (same features and limits) on a new adapter of the platform's, for the compile helper. */
export async function requestHelperDevice(): Promise<GPUDevice> {
  const device = await requestDevice(await platform().requestAdapter());
  helperDevices.add(device);
  return device;
}

/** Before the process exits: wait for the pipelines still compiling, then destroy the device (and the compile helper's). */
export async function releaseGpu(): Promise<void> {
  const gpu = await gpuPromise?.catch(() => undefined);
  if (!gpu) return;
  await Promise.allSettled([...compiling]);
  for (const d of helperDevices) d.destroy();
  helperDevices.clear();
  gpu.device.destroy();
}

async function acquire(options: GpuOptions): Promise<Gpu> {
  const adapter = options.device ? options.adapter : (options.adapter ?? (await requestAdapter(options.gpu)));
  const device = options.device ?? (await requestDevice(adapter!));
  const compile = device.createComputePipelineAsync.bind(device);
  device.createComputePipelineAsync = (descriptor) => {
    const p = compile(descriptor);
    trackCompile(p);
    return p;
  };
  void device.lost.then((info) => {
    // A deliberate destroy() at exit is not a loss worth reporting.
    if (info.reason === 'destroyed') return;
    lostReason = `${info.reason}: ${info.message}`;
    for (const l of lostListeners) l(lostReason);
  });

  // A device of the caller's carries its adapter's info (GPUDevice.adapterInfo); older implementations only the adapter's.
  const ai: Partial<GPUAdapterInfo> = adapter?.info ?? (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo ?? {};
  const limits: Record<string, number> = {};
  for (const key in device.limits) {
    const v = (device.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') limits[key] = v;
  }
  const description = ai.description || ai.device || '';
  const sizes = ai as { subgroupMinSize?: number; subgroupMaxSize?: number };
  const info: DeviceInfo = {
    vendor: ai.vendor ?? '',
    architecture: ai.architecture ?? '',
    description,
    isSoftware:
      (ai as { isFallbackAdapter?: boolean }).isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader|software/i.test(`${description} ${ai.vendor} ${ai.architecture}`),
    features: [...device.features].sort(),
    limits,
    subgroupMinSize: sizes.subgroupMinSize,
    subgroupMaxSize: sizes.subgroupMaxSize,
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
