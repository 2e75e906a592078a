// The engine's public face: device, tensors, autograd, ops.
export { init, rt, gpuWait, type Runtime } from './runtime.js';
export { getGpu, adapterName, describeGpu, type DeviceInfo, type Gpu } from './device.js';
export { Tensor, Storage, empty, fromArray, scalar, type DType, type Shape, type TypedArrayOf } from './tensor.js';
export { tidy, keep } from './scope.js';
export { backward, noGrad, clearTape, tapeLength, recordOp, isGradEnabled, type BackwardFn } from './autograd.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/layout.js';
export * from './ops/random.js';
export { layerNorm, l2Normalize } from './ops/norm.js';
export { softmax, logSoftmax } from './ops/softmax.js';
export { ParameterArena, ArenaBuffer, ARENA_ALIGN_BYTES, assertSharedLayout, type ParameterSpec, type ArenaEntry, type ArenaOptions, type Initializer, type NamedArrays } from './arena.js';
export { AdamW, isDecayed, type AdamWOptions, type AdamWStepOptions, type AdamWState } from './optim/adamw.js';
export { clipGradients, clipGradNorm, type ClipResult, type ClipOptions } from './optim/clip.js';
export { emaUpdate } from './optim/ema.js';
export { Rng, type RngState } from './rng.js';
export * from './io/safetensors.js';
