// The package as a user gets it: `npm pack` (which builds dist/ through `prepare`), installed from the
// tarball into an empty project, every entry point imported and used, its types checked by tsc, and
// the `smkd` bin run from the install.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { skipUnless } from '../helpers/skip.js';
import { REPO, run, runOk } from './process.js';

const test = suite('package');

interface PackInfo {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

let dir = '';
let app = '';
let pack: PackInfo;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'smkd-pack-'));
  app = path.join(dir, 'app');
  await mkdir(app);
});

test.after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('npm pack builds dist/ and packs the entry points, their types and the bin, no sources or tests', async () => {
  const r = await runOk('npm', ['pack', '--json', '--pack-destination', dir], { timeoutMs: 180_000 });
  // npm prints the build's output before the JSON report.
  pack = (JSON.parse(r.stdout.slice(r.stdout.indexOf('[\n'))) as PackInfo[])[0];
  const files = new Set(pack.files.map((f) => f.path));
  for (const entry of ['engine', 'model', 'train']) {
    assert.ok(files.has(`dist/${entry}/index.js`), `dist/${entry}/index.js is not packed`);
    assert.ok(files.has(`dist/${entry}/index.d.ts`), `dist/${entry}/index.d.ts is not packed`);
  }
  for (const f of [
    'bin/smkd.mjs',
    'scripts/setup-webgpu.mjs',
    'dist/train/cli.js',
    'dist/train/cli-main.js',
    'dist/train/data/crop-worker.js',
    'docs/engine.md',
    'docs/interop.md',
    'README.md',
    'package.json',
    'data/omniglot/omniglot-28.u8.gz',
    'data/omniglot/omniglot-28.json',
    'data/omniglot/LICENSE',
    'models/omniglot-vit.safetensors',
    'models/README.md',
    'dist/examples/mlp.js',
    'dist/examples/masked-autoencoder.js',
  ]) {
    assert.ok(files.has(f), `${f} is not packed`);
  }
  const stray = [...files].filter((f) => /^(test|bench|scratch|runs|examples)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')));
  assert.equal(stray, [], 'sources, tests or scratch files in the tarball');
  console.log(`  packed ${pack.filename}: ${(pack.size / 1024).toFixed(0)} kB (${(pack.unpackedSize / 1024).toFixed(0)} kB unpacked, ${files.size} files)`);
});

/** `npm install <what>` in `app`: from the npm cache (offline), else the registry; undefined when neither works. */
async function npmInstall(what: string[]): Promise<string | undefined> {
  const base = ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', ...what];
  for (const mode of ['--offline', '--prefer-offline']) {
    const r = await run('npm', [...base, mode], { cwd: app, timeoutMs: 180_000 });
    if (r.code === 0) return `npm install ${mode} (${r.seconds.toFixed(1)} s)`;
  }
  return undefined;
}

/** Link `dep` into `app` from this repository's node_modules (its own dependencies resolve from there). */
async function linkFromRepo(dep: string): Promise<void> {
  const link = path.join(app, 'node_modules', dep);
  await mkdir(path.dirname(link), { recursive: true });
  await symlink(path.join(REPO, 'node_modules', dep), link, 'dir');
}

/**
 * Install the tarball into `app`; with no network and no cached metadata, unpack it by hand and link
 * its dependencies from this repository.
 */
async function install(tarball: string): Promise<string> {
  await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const how = await npmInstall([tarball]);
  if (how) return how;
  const target = path.join(app, 'node_modules', 'smkd-webgpu');
  await mkdir(target, { recursive: true });
  await runOk('tar', ['-xzf', tarball, '-C', target, '--strip-components=1']);
  const manifest = JSON.parse(await readFile(path.join(target, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const dep of Object.keys(manifest.dependencies)) await linkFromRepo(dep);
  return 'unpacked with linked dependencies (npm install failed offline and online)';
}

test('the tarball installs into an empty project', async () => {
  assert.ok(pack, 'npm pack failed');
  const how = await install(path.join(dir, pack.filename));
  console.log(`  installed: ${how}`);
  const installed = JSON.parse(await readFile(path.join(app, 'node_modules/smkd-webgpu/package.json'), 'utf8')) as { version: string };
  const ours = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
  assert.is(installed.version, ours.version);
});

/** The command line's heavy packages: optional peers, not installed with the engine. */
const CLI_EXTRAS = ['sharp', 'vega', 'vega-lite', 'umap-js'];

test("the install is lean: the command line's image, chart and UMAP packages and tsx are not installed with the engine", async () => {
  const manifest = JSON.parse(await readFile(path.join(app, 'node_modules/smkd-webgpu/package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    peerDependenciesMeta: Record<string, { optional?: boolean }>;
  };
  for (const dep of [...CLI_EXTRAS, 'tsx']) {
    assert.not.ok(dep in manifest.dependencies, `${dep} is a dependency of the package`);
    assert.not.ok(existsSync(path.join(app, 'node_modules', dep)), `${dep} was installed with the engine`);
  }
  for (const dep of CLI_EXTRAS) assert.ok(manifest.peerDependenciesMeta[dep]?.optional, `${dep} is not an optional peer`);
  const installed = await run('du', ['-sk', '--dereference', path.join(app, 'node_modules')]);
  const count = await run('npm', ['ls', '--all', '--parseable'], { cwd: app });
  console.log(`  lean install: ${count.stdout.trim().split('\n').length - 1} packages, ${(Number(installed.stdout.split('\t')[0]) / 1024).toFixed(0)} MB`);
});

const USE = `
import * as engine from 'smkd-webgpu/engine';
import * as root from 'smkd-webgpu';
import * as model from 'smkd-webgpu/model';
import * as train from 'smkd-webgpu/train';

if (root.init !== engine.init) throw new Error('the package root is not the engine');
const rt = await engine.init();
const y = engine.tidy(() => engine.sum(engine.mul(engine.fromArray([1, 2, 3], [3]), 2)));
const vit = new model.VisionTransformer(model.vitConfig('tiny', { depth: 1 })).build({ seed: 1 });
const glyphs = new train.SyntheticGlyphs({ split: 'test', size: 16, imagesPerClass: 2 });
const image = await glyphs.load(0);
const omniglot = await train.openOmniglotPack(28);
console.log(JSON.stringify({
  omniglot: [omniglot.train.size, omniglot.val.size, omniglot.test.size],
  sum: await y.item(),
  params: vit.parameters().reduce((n, p) => n + p.size, 0),
  pixels: image.data.length,
  adapter: engine.adapterName(rt.gpu.info),
  keys: { engine: Object.keys(engine).length, model: Object.keys(model).length, train: Object.keys(train).length },
}));
`;

test('every entry point imports from the install and works (engine op, model build, data)', async () => {
  await writeFile(path.join(app, 'use.mjs'), USE);
  const r = await runOk(process.execPath, ['use.mjs'], { cwd: app, timeoutMs: 120_000 });
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { sum: number; params: number; pixels: number; omniglot: number[]; keys: Record<string, number> };
  assert.is(out.sum, 12);
  assert.equal(out.omniglot, [2660, 480, 1700], 'the packed Omniglot subset ships with the package');
  // tiny ViT at depth 1, D = 64, patch 4, 8x8 grid: cls + pos + patch conv + one block + final norm.
  const D = 64;
  const block = 2 * D + (3 * D * D + 3 * D) + (D * D + D) + 2 * D + (4 * D * D + 4 * D) + (4 * D * D + D);
  assert.is(out.params, D + 65 * D + (D * 48 + D) + block + 2 * D);
  assert.is(out.pixels, 16 * 16 * 3);
  for (const [k, n] of Object.entries(out.keys)) assert.ok(n > 10, `entry point ${k} exports only ${n} names`);
});

const requireEsm = (process.features as { require_module?: boolean }).require_module === true;
skipUnless(
  test,
  requireEsm,
  `Node ${process.version} cannot require() ES modules`,
)('CommonJS loads the engine with require() where Node can require ES modules (20.19 and newer)', async () => {
  const use = `const engine = require('smkd-webgpu/engine');
engine.init().then(async () => {
  const y = engine.tidy(() => engine.sum(engine.fromArray([1, 2, 3, 4], [4])));
  console.log(await y.item());
  process.exit(0);
});`;
  await writeFile(path.join(app, 'use.cjs'), use);
  const r = await runOk(process.execPath, ['use.cjs'], { cwd: app, timeoutMs: 120_000 });
  assert.is(r.stdout.trim().split('\n').pop(), '10');
});

test("the README's snippet runs as written from the install, as an .mjs file of a project npm init made (CommonJS by default)", async () => {
  const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
  const snippet = /## Using the library[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(snippet?.includes("from 'smkd-webgpu/engine'"), 'no js snippet under "Using the library"');
  const project = path.join(dir, 'npm-init');
  await mkdir(project);
  await runOk('npm', ['init', '-y'], { cwd: project });
  await symlink(path.join(app, 'node_modules'), path.join(project, 'node_modules'), 'dir');
  await writeFile(path.join(project, 'try.mjs'), snippet!);
  const r = await runOk(process.execPath, ['try.mjs'], { cwd: project, timeoutMs: 120_000 });
  const [loss, grads] = r.stdout.trim().split('\n').pop()!.split(' ').map(Number);
  assert.ok(Number.isFinite(loss), r.stdout);
  assert.is(grads, 640);
});

const TYPED = `
import { fromArray, matmul, Linear, AdamW, type Tensor } from 'smkd-webgpu/engine';
import { VisionTransformer, vitConfig, type VitOutput } from 'smkd-webgpu/model';
import { SyntheticGlyphs, type TrainConfig } from 'smkd-webgpu/train';

export function project(x: Tensor<'f32'>, layer: Linear): Tensor<'f32'> {
  return matmul(x, layer.param('weight'), { transB: true });
}
export const tokens = (vit: VisionTransformer, images: Tensor): VitOutput['tokens'] => vit.forward(images).tokens;
export const optimizer = (vit: VisionTransformer): AdamW => new AdamW(vit.arena, { betas: [0.9, 0.95] });
export const lr: TrainConfig['schedule']['lr'] = 5e-4;
export const classes: readonly string[] = new SyntheticGlyphs().classes;
// The declarations are real types, not any: each misuse below must be an error.
// @ts-expect-error the dtype of fromArray's result is 'i32', not 'f32'
export const wrongDtype: Tensor<'f32'> = fromArray([1], [1], 'i32');
// @ts-expect-error vitConfig knows the configuration names
export const wrongName = vitConfig('vit_huge');
// @ts-expect-error a Tensor's shape is read-only numbers
export const wrongShape: string[] = fromArray([1], [1]).shape;
`;

test('TypeScript sees full types through the exports map (tsc, NodeNext, strict)', async () => {
  await writeFile(path.join(app, 'typed.ts'), TYPED);
  const tsconfig = {
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: [] },
    files: ['typed.ts'],
  };
  await writeFile(path.join(app, 'tsconfig.json'), JSON.stringify(tsconfig));
  await runOk(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', '.'], { cwd: app, timeoutMs: 120_000 });
});

test('the examples compile against the install under the strict settings `tsc --init` writes (noUncheckedIndexedAccess, exactOptionalPropertyTypes, verbatimModuleSyntax)', async () => {
  const project = path.join(app, 'examples-check');
  await mkdir(project);
  const tsc = path.join(REPO, 'node_modules/typescript/bin/tsc');
  await runOk(process.execPath, [tsc, '--init'], { cwd: project });
  // tsc --init's config as written, with Node's types (a Node project adds @types/node) found in this repository.
  const config = (await readFile(path.join(project, 'tsconfig.json'), 'utf8')).replace(
    /"types": \[\]/,
    `"types": ["node"], "typeRoots": [${JSON.stringify(path.join(REPO, 'node_modules/@types'))}]`,
  );
  assert.match(config, /"noUncheckedIndexedAccess": true[\s\S]*"exactOptionalPropertyTypes": true/);
  await writeFile(path.join(project, 'tsconfig.json'), config);
  const examples = (await readdir(path.join(REPO, 'examples'))).filter((f) => f.endsWith('.ts'));
  assert.ok(examples.length >= 4, `examples: ${examples.join(', ')}`);
  for (const f of examples) {
    const source = (await readFile(path.join(REPO, 'examples', f), 'utf8')).replace(/'\.\.\/(engine|model|train)\/index\.js'/g, "'smkd-webgpu/$1'");
    assert.not.match(source, /from '\.\./, `${f} imports a path outside the public entry points`);
    await writeFile(path.join(project, f), source);
  }
  await runOk(process.execPath, [tsc, '-p', '.', '--noEmit'], { cwd: project, timeoutMs: 120_000 });
});

test('the smkd bin runs from the install (compiled CLI, no tsx) and from the repository', async () => {
  const installed = await runOk(process.execPath, ['node_modules/smkd-webgpu/bin/smkd.mjs', 'info'], { cwd: app, timeoutMs: 120_000 });
  assert.match(installed.stdout, /adapter:/);
  // npm links the bin (absent only when the install fell back to unpacking by hand).
  if (existsSync(path.join(app, 'node_modules/.bin/smkd'))) {
    const bin = await runOk(path.join(app, 'node_modules/.bin/smkd'), ['--help'], { cwd: app });
    assert.match(bin.stdout, /Usage: smkd/);
  }
  const repo = await runOk(process.execPath, ['bin/smkd.mjs', '--help']);
  assert.match(repo.stdout, /Usage: smkd/);
});

test('the examples ship compiled and run from the install (dist/examples)', async () => {
  const r = await runOk(process.execPath, ['node_modules/smkd-webgpu/dist/examples/mlp.js'], { cwd: app, timeoutMs: 120_000 });
  const acc = Number(/train accuracy (\S+)%/.exec(r.stdout)?.[1]);
  assert.ok(acc > 90, r.stdout);
});

test('smkd classify without sharp names the package to install, before any work', async () => {
  const examples = path.join(REPO, 'examples/omniglot-classify');
  const r = await run(process.execPath, ['node_modules/smkd-webgpu/bin/smkd.mjs', 'classify', path.join(examples, 'support'), path.join(examples, 'query')], {
    cwd: app,
    timeoutMs: 180_000,
  });
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /smkd classify needs the package sharp, which is not installed .*: npm install sharp/);
  assert.is(r.stdout, '');
});

test('smkd classify runs from the install with the shipped model, no checkpoint given, on Omniglot PNGs as they come', async () => {
  // The command line's extras, as README tells a user of the installed package to add them.
  if (!(await npmInstall(CLI_EXTRAS))) for (const dep of CLI_EXTRAS) await linkFromRepo(dep);
  // Black-on-white 105-px PNGs as Omniglot's own files are, of the five examples in the repository
  // (test-alphabet characters: one drawing per class as support, another drawer's as query).
  const examples = path.join(REPO, 'examples/omniglot-classify');
  const r = await runOk(process.execPath, ['node_modules/smkd-webgpu/bin/smkd.mjs', 'classify', path.join(examples, 'support'), path.join(examples, 'query'), '--json', '-'], {
    cwd: app,
    timeoutMs: 180_000,
  });
  const out = JSON.parse(r.stdout) as { model: string; predictions: { file: string; predicted: string; inverted: boolean }[] };
  assert.match(out.model, /node_modules\/smkd-webgpu\/models\/omniglot-vit\.safetensors$/);
  assert.is(out.predictions.length, 5);
  // The query files are named for their class: a model of chance would get one of five right.
  const right = out.predictions.filter((p) => path.basename(p.file).startsWith(`${p.predicted}-`)).length;
  assert.ok(right >= 4, `${right} of 5 queries right: ${JSON.stringify(out.predictions.map((p) => [path.basename(p.file), p.predicted]))}`);
  assert.ok(
    out.predictions.every((p) => p.inverted),
    'black on white is turned to the pack polarity',
  );
});

test('the driver setup script runs from the install', async () => {
  const r = await runOk(process.execPath, ['node_modules/smkd-webgpu/scripts/setup-webgpu.mjs'], { cwd: app, timeoutMs: 180_000 });
  assert.match(r.stdout, /\[setup\] WebGPU adapter: /);
});

test.run();
