// The test page's script: the engine on navigator.gpu, and the cases the Node side asks for, on `window`.
import { adapterName, init, rt } from '../../engine/index.js';
import { runOpCases } from './op-cases.js';
import { trainingSteps, vitForward } from './parity-cases.js';

const api = {
  async adapter(): Promise<{ name: string; software: boolean; features: string[] }> {
    await init();
    const info = rt().gpu.info;
    return { name: adapterName(info), software: info.isSoftware, features: info.features };
  },
  runOpCases,
  async forward(modelUrl: string, images: number[], n: number): Promise<number[]> {
    const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
    return Array.from(await vitForward(bytes, Float32Array.from(images), n));
  },
  async steps(modelUrl: string, images: number[], labels: number[], steps: number): Promise<{ losses: number[]; params: number[] }> {
    const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
    return trainingSteps(bytes, Float32Array.from(images), labels, steps);
  },
};

(globalThis as { smkdTest?: typeof api }).smkdTest = api;
