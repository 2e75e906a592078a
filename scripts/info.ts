// `npm run info`: which WebGPU adapter this machine gives the engine, with its features and limits.
import { describeGpu, getGpu } from '../engine/device.js';

try {
  console.log(describeGpu(await getGpu()));
  process.exit(0);
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
