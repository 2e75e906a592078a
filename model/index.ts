// `smkd-webgpu/model` in Node: the model (model/api.ts) and its checkpoints as files.
export * from './api.js';
export { loadModel, saveModel } from './node/files.js';
