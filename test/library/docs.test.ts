// The guides cannot rot: every ```ts block of docs/engine.md and docs/interop.md is type-checked
// (strict, as a user's project would be) and run, and what it prints must be exactly its `// → `
// comments. Blocks marked ```ts no-run (they need files we do not have, e.g. a downloaded timm
// checkpoint) are type-checked only. Imports of the package are pointed at this repository's sources.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { clearTape, tapeLength } from '../../engine/index.js';
import { gpu } from '../helpers/check.js';
import { REPO, runOk } from './process.js';

const DOCS = ['docs/engine.md', 'docs/interop.md'];
const ENTRY = { '': 'engine', '/engine': 'engine', '/model': 'model', '/train': 'train' } as Record<string, string>;

interface Block {
  doc: string;
  line: number;
  code: string;
  run: boolean;
  expected: string[];
}

async function blocks(doc: string): Promise<Block[]> {
  const text = await readFile(path.join(REPO, doc), 'utf8');
  const out: Block[] = [];
  const fence = /^```ts( no-run)?\n([\s\S]*?)^```$/gm;
  for (let m; (m = fence.exec(text)); ) {
    const code = m[2];
    const expected = [...code.matchAll(/\/\/ → (.*)$/gm)].map((e) => e[1].trimEnd());
    out.push({ doc, line: text.slice(0, m.index).split('\n').length, code, run: !m[1], expected });
  }
  return out;
}

/** The block as a module of the test folder, importing the repository's entry points. */
function localise(code: string): string {
  return code.replace(/from 'smkd-webgpu(\/\w+)?'/g, (_, sub: string | undefined) => {
    const entry = ENTRY[sub ?? ''];
    if (!entry) throw new Error(`unknown entry point smkd-webgpu${sub}`);
    return `from '${path.join(REPO, entry, 'index.js')}'`;
  });
}

const test = suite('docs');
let dir = '';
let all: Block[] = [];
const files = new Map<Block, string>();

test.before(async () => {
  await gpu();
  dir = await mkdtemp(path.join(tmpdir(), 'smkd-docs-'));
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  all = (await Promise.all(DOCS.map(blocks))).flat();
  for (const [i, b] of all.entries()) {
    const file = path.join(dir, `${path.basename(b.doc, '.md')}-line${b.line}-${i}.ts`);
    await writeFile(file, localise(b.code));
    files.set(b, file);
  }
});

test.after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the guides have examples, each section of the engine guide', async () => {
  const engine = all.filter((b) => b.doc === 'docs/engine.md');
  assert.ok(engine.length >= 10, `docs/engine.md has ${engine.length} ts blocks`);
  assert.ok(all.some((b) => b.doc === 'docs/interop.md'), 'docs/interop.md has no ts block');
  const text = await readFile(path.join(REPO, 'docs/engine.md'), 'utf8');
  for (const topic of ['Device and adapter', 'Tensors and their lifetime', 'Autograd', 'Ops', 'Modules', 'parameter arena', 'Optimizers', 'Checkpoints', 'Writing an op', 'Reading errors']) {
    assert.ok(new RegExp(`^## \\d+\\. .*${topic}`, 'm').test(text), `docs/engine.md has no section on ${topic}`);
  }
});

test('every example type-checks (strict, NodeNext)', async () => {
  const tsconfig = {
    compilerOptions: {
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      target: 'ES2022',
      // The repository's own lib: the sources the examples import are checked along with them.
      lib: ['ES2022'],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      typeRoots: [path.join(REPO, 'node_modules/@types')],
      types: ['node'],
    },
    files: [...files.values()].map((f) => path.basename(f)),
  };
  await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
  await runOk(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir, timeoutMs: 120_000 });
});

test('every runnable example runs and prints what its comments say', async () => {
  for (const b of all.filter((x) => x.run)) {
    const where = `${b.doc}:${b.line}`;
    const printed: string[] = [];
    clearTape();
    const log = console.log;
    console.log = (...args: unknown[]) => void printed.push(...format(...args).split('\n'));
    try {
      await import(pathToFileURL(files.get(b)!).href);
    } catch (e) {
      throw new Error(`${where}: the example threw: ${(e as Error).stack}`);
    } finally {
      console.log = log;
    }
    assert.equal(printed.map((l) => l.trimEnd()), b.expected, `${where}: printed lines differ from its // → comments`);
    // An example leaves nothing on the autograd tape (and must not leave it to the next test file).
    const tape = tapeLength();
    clearTape();
    assert.is(tape, 0, `${where}: leaves ${tape} entries on the autograd tape`);
  }
});

test.run();
