// bench/jaxjs/backends.ts for the page: the browser bench compares with tfjs-webgpu only (jax-js's
// browser build is not part of it); the suites' jax-js halves are never called there.
export type { Jax, JaxArray, JaxBackendName, JaxDevice, JaxEnv } from '../jaxjs/backends.js';

function absent(): never {
  throw new Error('jax-js is not part of the browser bench');
}

export const jaxDevice = absent;
export const loadJaxjs = absent;
export const toJax = absent;
export const drainJax = absent;
export const readJax = absent;
