// `smkd-webgpu/model` in a browser (the package's `browser` export condition): the model, with
// checkpoints as bytes (loadModelBytes, modelBytes).
export * from './api.js';
