// init({ device }), init({ gpu }): the engine on a WebGPU device or entry point of the caller's (a page
// that already has one, or tfjs' device), each in a fresh process, since the engine has one device per process.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('init options');
const engine = path.resolve('engine/index.ts');

/** Run `body` as an ES module in a fresh Node with tsx; its last stdout line, parsed as JSON. */
function run(body: string): unknown {
  const code = `import * as E from ${JSON.stringify(engine)};\nimport { create } from 'webgpu';\n${body}\nawait E.releaseGpu();\n`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 120_000 });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

test('init({ device }) uses that device as it is, and a second init() returns it', () => {
  const out = run(`const gpu = create([]);
const adapter = await gpu.requestAdapter();
const device = await adapter.requestDevice();
const runtime = await E.init({ device, adapter });
const again = await E.init();
const y = await E.matmul(E.fromArray([1, 2, 3, 4], [2, 2]), E.fromArray([1, 0, 0, 1], [2, 2])).toArray();
let refused = '';
try { await E.init({ device }); } catch (e) { refused = e.message; }
console.log(JSON.stringify({ same: runtime.device === device && again === runtime, y: Array.from(y), refused }));`) as { same: boolean; y: number[]; refused: string };
  assert.ok(out.same);
  assert.equal(out.y, [1, 2, 3, 4]);
  assert.match(out.refused, 'already has its device');
});

test('init({ gpu }) asks that entry point for the adapter', () => {
  const out = run(`let asked = 0;
const dawn = create([]);
const gpu = { requestAdapter: (o) => { asked++; return dawn.requestAdapter(o); } };
const runtime = await E.init({ gpu });
const y = await E.sum(E.fromArray([1, 2, 3], [3])).toArray();
console.log(JSON.stringify({ asked, name: E.adapterName(runtime.gpu.info), y: Array.from(y) }));`) as { asked: number; name: string; y: number[] };
  assert.is(out.asked, 1);
  assert.ok(out.name.length > 0);
  assert.equal(out.y, [6]);
});

test.run();
