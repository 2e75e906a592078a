/// <reference types="@webgpu/types" preserve="true" />
// `smkd-webgpu/engine` in Node: the Dawn platform installed on import (engine/node/dawn.ts), the whole
// engine (engine/api.ts), and the file versions of its I/O. A browser gets engine/browser.ts instead
// (the package's `browser` export condition).
import './node/dawn.js';
import './node/leak-at-exit.js';

export * from './api.js';
export { NO_ADAPTER_HELP } from './node/dawn.js';
export { readSafetensors, writeSafetensors, saveOptimizer, loadOptimizer } from './node/files.js';
