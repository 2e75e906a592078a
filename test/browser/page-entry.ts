// The test page's script: the engine on navigator.gpu, and the cases the Node side asks for, on `window`.
import { adapterName, browserPlatform, init, rt, setPlatform } from '../../engine/index.js';
import { runOpCases } from './op-cases.js';
import { trainingSteps, vitForward } from './parity-cases.js';

// Every kernel the page compiles, for the Node side to add to the compile budget's log (scripts/compile-budget.ts):
// the variants chosen for this adapter (SwiftShader's subgroups of 4) are not among Node's.
const kernels: { key: string; code: string }[] = [];
setPlatform({ ...browserPlatform, dumpShader: (key, code) => void kernels.push({ key, code }) });

const api = {
  kernels: (): { key: string; code: string }[] => kernels,
  /** The slowest pipeline of the page so far (ms from asking to having it: queued compiles included). */
  slowestCompile(): { key: string; ms: number } {
    let worst = { key: '', ms: 0 };
    for (const [key, ms] of rt().compileMs) if (ms > worst.ms) worst = { key, ms };
    return worst;
  },
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
