// navigator.gpu for the peer libraries (tfjs-backend-webgpu, jax-js): its one adapter is the engine's,
// and requestDevice() hands back the engine's device, so every runner of a bench shares one Dawn device.
import { rt } from '../engine/index.js';

/** Install (or replace) navigator.gpu with the engine's adapter and device. Call after init(). */
export function shareEngineDevice(): void {
  const gpu = rt().gpu;
  if (!gpu.adapter) throw new Error('shareEngineDevice: the engine was given a device without its adapter');
  const adapter = new Proxy(gpu.adapter, {
    get(target, prop) {
      if (prop === 'requestDevice') return async () => gpu.device;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const navigatorGpu = { requestAdapter: async () => adapter, getPreferredCanvasFormat: () => 'rgba8unorm', wgslLanguageFeatures: new Set<string>() };
  const g = globalThis as { navigator?: { gpu?: unknown; userAgent?: unknown } };
  // Node 20 has no navigator (tfjs' loader may have made one with gpu only); later versions have one without gpu.
  if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(g.navigator, 'gpu', { value: navigatorGpu, configurable: true });
  // jax-js reads navigator.userAgent (browser checks in its WebGPU tuning) and would throw on undefined.
  if (typeof g.navigator!.userAgent !== 'string') Object.defineProperty(g.navigator, 'userAgent', { value: `Node.js/${process.versions.node}`, configurable: true });
}
