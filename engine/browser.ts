/// <reference types="@webgpu/types" preserve="true" />
// `smkd-webgpu/engine` in a browser (the package's `browser` export condition): the whole engine on
// navigator.gpu, or on a device of the page's (`init({ device })`); settings through setSettings().
// Checkpoints are bytes here: fetch() a .safetensors file and parseSafetensors() it.
export * from './api.js';
