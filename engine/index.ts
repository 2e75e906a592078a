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
