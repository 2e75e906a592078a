// The guides cannot rot: every ```ts block of docs/engine.md and docs/interop.md is type-checked
// (strict, as a user's project would be) and run, and what it prints must be exactly its `// → `
// comments. Blocks marked ```ts no-run (they need files we do not have, e.g. a downloaded timm
// checkpoint) are type-checked only. Imports of the package are pointed at this repository's sources.
// The citations cannot rot either (a second suite, no GPU): every section the sources cite names a
// heading of docs/algorithm.md, and every repository path a comment names exists.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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
  for (let m; (m = fence.exec(text));) {
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
  assert.ok(
    all.some((b) => b.doc === 'docs/interop.md'),
    'docs/interop.md has no ts block',
  );
  const text = await readFile(path.join(REPO, 'docs/engine.md'), 'utf8');
  for (const topic of [
    'Device and adapter',
    'Tensors and their lifetime',
    'Autograd',
    'Ops',
    'Modules',
    'parameter arena',
    'Optimizers',
    'Checkpoints',
    'Writing an op',
    'Reading errors',
  ]) {
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
    assert.equal(
      printed.map((l) => l.trimEnd()),
      b.expected,
      `${where}: printed lines differ from its // → comments`,
    );
    // An example leaves nothing on the autograd tape (and must not leave it to the next test file).
    const tape = tapeLength();
    clearTape();
    assert.is(tape, 0, `${where}: leaves ${tape} entries on the autograd tape`);
  }
});

test.run();

// Citations of docs/algorithm.md. Sources cite it as `docs/algorithm.md §5.5` (or `§6, §7.3`, `§5.3-§5.5`
// after the path, on the same line); the Markdown pages may link it in any form, but every section
// number anyone cites must be a heading of the page.
const cites = suite('algorithm citations');

const ALGORITHM = 'docs/algorithm.md';
/** The section sign, escaped so that this file's own code is not read as citations. */
const SECTION = '\u00a7';
/** Folders of code, tests and scripts, and the file kinds whose text is checked. */
const CODE_DIRS = ['engine', 'kernels', 'model', 'train', 'bench', 'scripts', 'test', 'examples', 'bin'];
const CODE_FILE = /\.(ts|mts|mjs|js|py)$/;
/** Paths in comments that name files of other projects (timm's sources), not of this repository. */
const OTHER_PROJECTS = new Set(['timm', 'torch', 'torchvision', 'node_modules']);

async function filesUnder(dir: string, keep: (name: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(REPO, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory() && !['node_modules', 'results'].includes(e.name) && !e.name.startsWith('.')) out.push(...(await filesUnder(rel, keep)));
    else if (e.isFile() && keep(e.name)) out.push(rel);
  }
  return out;
}

let doc = '';
let sections = new Set<string>();
let headings: string[] = [];
const texts = new Map<string, string>();
let codeFiles: string[] = [];

cites.before(async () => {
  doc = await readFile(path.join(REPO, ALGORITHM), 'utf8');
  headings = [...doc.matchAll(/^#{2,4} (\d+(?:\.\d+)*)\.? /gm)].map((m) => m[1]);
  sections = new Set(headings);
  codeFiles = (await Promise.all(CODE_DIRS.map((d) => filesUnder(d, (n) => CODE_FILE.test(n))))).flat();
  const pages = ['README.md', ...(await filesUnder('docs', (n) => n.endsWith('.md')))];
  for (const f of [...codeFiles, ...pages]) texts.set(f, await readFile(path.join(REPO, f), 'utf8'));
});

cites('docs/algorithm.md numbers its sections once each, every subsection under its section', () => {
  assert.ok(headings.length >= 40, `${ALGORITHM} has ${headings.length} numbered headings`);
  const twice = headings.filter((h, i) => headings.indexOf(h) !== i);
  assert.equal(twice, [], 'section numbers used twice');
  const orphans = headings.filter((h) => h.includes('.') && !sections.has(h.slice(0, h.lastIndexOf('.'))));
  assert.equal(orphans, [], 'subsections without their section');
  assert.ok(/^## \d+\. Known issues of the reference code and what we do instead$/m.test(doc), `${ALGORITHM} has no section on the known issues of the reference code`);
});

cites('every section citation names a heading of docs/algorithm.md, and sources cite it in one form', () => {
  const number = new RegExp(`${SECTION}(\\d+(?:\\.\\d+)*)`, 'g');
  const bad: string[] = [];
  for (const [file, text] of texts) {
    const code = codeFiles.includes(file);
    text.split('\n').forEach((line, i) => {
      const at = line.indexOf(SECTION);
      if (at < 0) return;
      const where = `${file}:${i + 1}`;
      if (code && !line.slice(0, at).includes(ALGORITHM)) bad.push(`${where}: a citation not written as "${ALGORITHM} ${SECTION}N.M"`);
      for (const m of line.matchAll(number)) if (!sections.has(m[1])) bad.push(`${where}: ${SECTION}${m[1]} is not a heading of ${ALGORITHM}`);
    });
  }
  assert.equal(bad, []);
});

cites('no source cites the specification the project was built from (it is not in the repository)', () => {
  // Its section numbers, its numbered list of ambiguities, its two tags for the two codes, its file name.
  const old = [/\bspec(?: section)? \d/i, /\[A-\d+\]/, /\bREF\b/, /\bSPEC\b/, /smkd-algorithm\.md/];
  const bad: string[] = [];
  for (const file of codeFiles) {
    texts
      .get(file)!
      .split('\n')
      .forEach((line, i) => {
        if (old.some((r) => r.test(line))) bad.push(`${file}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.equal(bad, [], `cite ${ALGORITHM} instead`);
});

/** The comment text of a source file (Python: all of it; its comments and docstrings are most of what names paths). */
function comments(file: string, text: string): string[] {
  if (file.endsWith('.py')) return text.split('\n');
  return text.split('\n').map((line) => {
    const t = line.trim();
    if (t.startsWith('//') || t.startsWith('*') || t.startsWith('/*')) return t;
    const tail = line.indexOf(' // ');
    return tail >= 0 ? line.slice(tail) : '';
  });
}

/** Whether a repository path cited in `file` exists (relative to the repository or to the file; a `*` in the name matches any run). */
function pathExists(file: string, cited: string): boolean {
  return [REPO, path.join(REPO, path.dirname(file))].some((base) => {
    const full = path.join(base, cited);
    if (!cited.includes('*')) return existsSync(full);
    const dir = path.dirname(full);
    const name = new RegExp(
      `^${path
        .basename(full)
        .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')}$`,
    );
    return existsSync(dir) && readdirSync(dir).some((n) => name.test(n));
  });
}

cites('every repository path a comment names exists', () => {
  // A path: folders and a file name ending in .ts/.md/.py/.mjs, not inside a URL or a package name.
  const cited = /(?<![\w.@/:$-])((?:\.{1,2}\/)*(?:[\w.-]+\/)+[\w.*-]+\.(?:ts|md|py|mjs))(?![\w/])/g;
  const bad: string[] = [];
  for (const file of codeFiles) {
    comments(file, texts.get(file)!).forEach((line, i) => {
      for (const m of line.matchAll(cited)) {
        if (OTHER_PROJECTS.has(m[1].split('/')[0])) continue;
        if (!pathExists(file, m[1])) bad.push(`${file}:${i + 1}: ${m[1]}`);
      }
    });
  }
  assert.equal(bad, [], 'comments name files that are not in the repository');
});

cites.run();
