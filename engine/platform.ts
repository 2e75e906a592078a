// What the engine needs from its host, in one place: a WebGPU adapter, the settings a user can give
// (environment variables in Node), a way to wait for the GPU, and somewhere to dump shaders. The
// engine's files use only this interface, so the same code runs in Node and in a browser: the Node
// entry (engine/index.ts) installs the Dawn platform of engine/node/dawn.ts; without it, the browser's
// `navigator.gpu` is used. Nothing here may touch a Node global.

export interface Platform {
  /** 'node' (Dawn) or 'browser' (navigator.gpu, or a device the caller gave to init()). */
  readonly name: 'node' | 'browser';
  /** The adapter to create the device from; throws with a message saying what to install or enable. */
  requestAdapter(): Promise<GPUAdapter>;
  /** A setting by its environment variable's name (SMKD_HARDWARE_PATHS, ...); undefined where unset. */
  env(name: string): string | undefined;
  /** Resolve `p` while letting the GPU make progress (Dawn in Node needs its events polled; a browser does not). */
  wait<T>(p: Promise<T>): Promise<T>;
  /** Write a kernel's WGSL somewhere a user can read it (SMKD_DUMP_SHADERS); absent where there is no file system. */
  dumpShader?(key: string, code: string): void;
}

/** A browser's WebGPU: navigator.gpu; settings only from `setSettings`; the event loop already delivers GPU events. */
export const browserPlatform: Platform = {
  name: 'browser',
  async requestAdapter() {
    const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (!gpu) {
      throw new Error(
        'No WebGPU: navigator.gpu is undefined. In a browser, use a recent Chrome, Edge or Safari (or Firefox with WebGPU on) on an https or ' +
          "localhost page; in Node, import the engine as 'smkd-webgpu/engine', whose Node entry installs Dawn",
      );
    }
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new Error('navigator.gpu.requestAdapter() returned no adapter: WebGPU is disabled or blocklisted for this GPU in this browser');
    return adapter;
  },
  env: (name) => settings[name],
  wait: (p) => p,
};

// Settings given by code where there is no environment (a page): the same names as the variables.
const settings: Record<string, string | undefined> = {};

/** Set engine settings by their environment variables' names (in a browser, where there is no environment). */
export function setSettings(values: Record<string, string | undefined>): void {
  Object.assign(settings, values);
}

let current: Platform = browserPlatform;

/** The host the engine runs on. */
export function platform(): Platform {
  return current;
}

/** Install a host (engine/node/dawn.ts does, on import). */
export function setPlatform(p: Platform): void {
  current = p;
}

/** Whether a setting is on: '1', 'true' or 'yes'. */
export function settingOn(name: string): boolean {
  return /^(1|true|yes)$/i.test(current.env(name) ?? '');
}
