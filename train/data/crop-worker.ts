// Worker thread entry: augments chunks of training batches (see crop-batch.ts) off the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { augmentChunk, type CropConfig } from './crop-batch.js';
import type { RgbImage } from './dataset.js';

export interface ChunkTask {
  id: number;
  it: number;
  start: number;
  images: RgbImage[];
  masked: boolean;
}

const cfg = workerData as CropConfig;
const port = parentPort!;
port.on('message', (task: ChunkTask) => {
  try {
    const chunk = augmentChunk(cfg, task.it, task.start, task.images, task.masked);
    const buffers = [...chunk.globals, ...chunk.locals, ...chunk.masks].map((a) => a.buffer as ArrayBuffer);
    port.postMessage({ id: task.id, chunk }, buffers);
  } catch (e) {
    port.postMessage({ id: task.id, error: (e as Error).stack ?? String(e) });
  }
});
