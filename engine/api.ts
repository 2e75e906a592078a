/// <reference types="@webgpu/types" preserve="true" />
// The engine's public face on every platform, in the order a user meets it (docs/engine.md): device,
// tensors and their lifetime, autograd, ops, modules, the parameter arena, optimizers, checkpoints as
// bytes, and what it takes to write a new op (kernel source + launch + recordOp). `smkd-webgpu/engine`
// is this plus the Node platform and files in Node (engine/index.ts), this alone in a browser
// (engine/browser.ts). Nothing imported from here touches a Node global.

// Device and runtime: `await init()` once; ops record work, reading a value submits it.
export { init, rt, gpuWait, type Runtime, type Binding } from './runtime.js';
export { platform, setPlatform, setSettings, browserPlatform, type Platform } from './platform.js';
export { DispatchProfiler, type DispatchTiming } from './profiler.js';
export type { BufferPool, PooledBuffer, PoolStats } from './buffer-pool.js';
export { getGpu, releaseGpu, adapterName, describeGpu, type DeviceInfo, type Gpu, type GpuOptions } from './device.js';

// Tensors and their lifetime.
export { Tensor, empty, fromArray, scalar, type Storage, type DType, type Shape, type TypedArrayOf } from './tensor.js';
export { numel, broadcastShapes, fmt } from './shape.js';
export { tidy, keep } from './scope.js';
export { inference, type HostValues } from './inference.js';
export { trackTensors, liveTensors, leakReport } from './leak-report.js';

// Autograd.
export { noGrad, isGradEnabled, recordOp, clearTape, tapeLength, type BackwardFn, type TapeEntry } from './autograd.js';
export { backward, type BackwardOptions } from './backward.js';
export { gradcheck, type GradcheckOptions, type GradcheckResult } from './gradcheck.js';

// Ops.
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/layout.js';
export * from './ops/random.js';
export { layerNorm, l2Normalize } from './ops/norm.js';
export { softmax, logSoftmax } from './ops/softmax.js';
export { crossEntropy, oneHot, type CrossEntropyOptions } from './ops/cross-entropy.js';
export { matmul, linear, linearGelu, type MatmulFlags } from './ops/matmul.js';
export { scaledDotProductAttention, scaledDotProductAttentionPacked, clsAttention, type AttentionOptions } from './ops/attention.js';
export { splitHeads, mergeHeads } from './ops/heads.js';
export { softCrossEntropy, softCrossEntropyPairs, updateCenter, type SoftCrossEntropyOptions, type DistillTemperatures } from './ops/soft-cross-entropy.js';
export { cosineArgmax } from './ops/cosine-argmax.js';
export { argmax } from './ops/argmax.js';
export { conv2d, type Conv2dOptions } from './ops/conv.js';

// Modules with PyTorch's names, and their initialisers.
export { Module, StateDictError, type BuildOptions, type HostTensor, type ParamInit, type ParamOptions } from './nn/module.js';
export { Linear, LayerNorm, GELU, Dropout, DropPath, Mlp, type LinearOptions } from './nn/layers.js';
export { truncNormal, uniform, kaimingUniformDefault } from './nn/init.js';

// The parameter arena: every parameter, gradient and optimizer state of a model in one buffer each.
export { ParameterArena, type ArenaBuffer, type ParameterSpec, type ArenaEntry, type ArenaOptions, type Initializer, type NamedArrays } from './arena.js';

// Optimizers.
export { AdamW, isDecayed, type AdamWOptions, type AdamWParamGroup, type AdamWStepOptions, type AdamWState } from './optim/adamw.js';
export { clipGradients, clipGradNorm, type ClipResult, type ClipOptions } from './optim/clip.js';
export { emaUpdate } from './optim/ema.js';
export { cosineScheduleAt, linspaceAt, warmupCosine, type WarmupCosineOptions } from './optim/schedules.js';
export { Rng, type RngState } from './rng.js';

// Checkpoints: safetensors bytes with PyTorch's names (files: engine/node/files.ts, in Node).
export * from './io/safetensors.js';
export { optimizerTensors, loadOptimizerTensors } from './io/optimizer-state.js';

// Writing a new op: WGSL source with a cache key, a launch, and a backward rule for recordOp.
export { launch, opLabel, assertFloat } from './ops/launch.js';
export { grid1d, linearIndex, entry1d, defineKernel, WG, type KernelSource, type KernelDecl, type BindingDecl, type UniformValues } from '../kernels/kernel.js';
