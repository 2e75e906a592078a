// ESLint 9 flat config: typescript-eslint's recommended rules, unused code as an error, no cycles,
// and the layer order of docs/architecture.md (train -> model -> engine -> kernels, never back up).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import { fileURLToPath } from 'node:url';

const unused = ['error', { args: 'after-used', argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'web/dist/', 'docs/api/', 'bench/results/', 'runs/', '**/*.py'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mjs', '**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.node } },
    plugins: { 'import-x': importX },
    settings: {
      // Without the extensions and parser, import-x cannot read a dependency's .ts source and no-cycle sees no edges.
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver': undefined,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      'no-unused-vars': 'off',
      '@typescript-eslint/no-unused-vars': unused,
      // The library is strict but uses `any` in a few test/bench adapters (tfjs, jax-js); the public code has none.
      '@typescript-eslint/no-explicit-any': 'off',
      'import-x/no-cycle': 'error',
      'import-x/no-self-import': 'error',
      'import-x/no-unresolved': 'error',
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            { target: './kernels', from: ['./engine', './model', './train'], message: 'kernels/ is the bottom layer.' },
            { target: './engine', from: ['./model', './train'], message: 'engine/ must not import model/ or train/.' },
            { target: './model', from: './train', message: 'model/ must not import train/.' },
            // The engine's public face is engine/index.ts: what model/ and train/ need from the engine, a user of the
            // package needs too, so it is exported there rather than reached for in the engine's files.
            // The one exception, rng.ts, is pure host code: the augmentation workers (train/data/crop-worker.ts) need the
            // RNG, and through index.ts each worker would load Dawn's native module too (+100 ms per worker, measured).
            // model/ goes through the platform-neutral face engine/api.ts (model/node/ and train/ may use the Node one, index.ts).
            { target: './train', from: './engine', except: ['./index.ts', './api.ts', './rng.ts'], message: 'import the engine through engine/index.js.' },
            { target: './model', from: './engine', except: ['./index.ts', './api.ts', './rng.ts'], message: 'import the engine through engine/api.js.' },
            { target: ['./model', './train'], from: './kernels', message: 'model/ and train/ reach kernels only through the engine.' },
          ],
        },
      ],
    },
  },
  {
    // Type-aware rules, only the cheap ones worth their cost (they double the lint time): a promise left
    // floating must say so with `void`.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: fileURLToPath(new URL('.', import.meta.url)) } },
    rules: { '@typescript-eslint/no-floating-promises': 'error', '@typescript-eslint/no-misused-promises': 'error' },
  },
  {
    // The library layers: no `any` in code a user of the package sees.
    files: ['kernels/**/*.ts', 'engine/**/*.ts', 'model/**/*.ts', 'train/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'error' },
  },
  {
    // One codebase for Node and the browser (issue #24): the engine and the model reach Node only in their
    // node/ folders and their Node entries (index.ts); everything else bundles for a page as it is.
    files: ['kernels/**/*.ts', 'engine/**/*.ts', 'model/**/*.ts'],
    ignores: ['engine/node/**', 'model/node/**', 'engine/index.ts', 'model/index.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*', 'fs', 'fs/*', 'path', 'os', 'worker_threads', 'child_process', 'webgpu'], message: 'Node-only: put it in engine/node/ or model/node/.' },
            {
              group: ['**/node/*', './index.js', '../index.js', '../engine/index.js', '../../engine/index.js'],
              message: 'the Node entry: import engine/api.js (or model/api.js) instead.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['process', 'Buffer', 'setImmediate', 'require', '__dirname', '__filename', 'global'].map((name) => ({
          name,
          message: `${name} is Node-only: go through engine/platform.ts.`,
        })),
      ],
    },
  },
  {
    // The few-shot page (web/page/, bundled for the browser by web/build.ts): the browser's globals, not Node's,
    // and no `any`, as in the library layers.
    files: ['web/page/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*', 'fs', 'fs/*', 'path', 'os', 'worker_threads', 'child_process', 'webgpu'], message: 'the page runs in a browser: no Node modules.' },
            {
              group: ['**/engine/index.js', '**/model/index.js', '**/engine/api.js', '**/model/api.js'],
              message: "the page's entries are engine/browser.js and model/browser.js.",
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['process', 'Buffer', 'setImmediate', 'require', '__dirname', '__filename', 'global'].map((name) => ({
          name,
          message: `${name} is Node-only: the page runs in a browser.`,
        })),
      ],
    },
  },
  {
    // Plain JavaScript (bin/, scripts/*.mjs, this file): no TypeScript-only rules.
    files: ['**/*.mjs', '**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
