// `smkd show embedding`: the held-out classes of a tiny run (synthetic glyphs) in 2-D, one point per
// image, one legend entry per class, the thumbnails asked for as data: URIs; the features are the ones
// `smkd eval` extracts; UMAP is seeded; bad input is named.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { saveModel } from '../../model/index.js';
import { vitConfig } from '../../model/configs.js';
import { StudentTeacher } from '../../model/smkd.js';
import { program } from '../../train/cli.js';
import { preset, validateConfig } from '../../train/config.js';
import { embeddingIndices, showEmbedding, umap2d } from '../../train/show/embedding.js';
import { openSplits } from '../../train/sources.js';
import { gpu, rejects } from '../helpers/check.js';

const test = suite('show embedding');
test.before(gpu);

/** A run directory as the trainer leaves it (tiny preset, synthetic data, depth 1). */
async function tinyRun(dir: string): Promise<StudentTeacher> {
  const base = preset('tiny', 1);
  const cfg = validateConfig({ ...base, out: dir, model: { ...base.model, depth: 1 } });
  const models = new StudentTeacher({ vit: vitConfig('tiny', { depth: 1 }), head: { ...cfg.head }, seed: 2 });
  const ckpt = path.join(dir, 'checkpoints', 'it-0000001');
  await mkdir(ckpt, { recursive: true });
  await saveModel(path.join(ckpt, 'teacher.safetensors'), models.teacher);
  await saveModel(path.join(ckpt, 'student.safetensors'), models.student);
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(cfg));
  await writeFile(path.join(dir, 'latest.json'), JSON.stringify({ checkpoint: 'checkpoints/it-0000001', iteration: 1, phase: 1 }));
  return models;
}

/** The elements inside the first `<g>` whose class starts with `cls` (vega's mark groups are flat). */
function markGroup(svg: string, cls: string): string {
  const start = svg.indexOf(`<g class="${cls}`);
  assert.ok(start >= 0, `a ${cls} group`);
  return svg.slice(start, svg.indexOf('</g>', start));
}

test('indices of the first classes, capped per class, in dataset order; UMAP is seeded and needs 3 points', async () => {
  const labels = [0, 1, 0, 2, 1, 0, 3, 2, 0];
  const ds = { name: 'd', classes: ['a', 'b', 'c', 'd'], size: labels.length, label: (i: number) => labels[i], load: () => Promise.reject(new Error('unused')), describe: String };
  assert.equal(Array.from(embeddingIndices(ds, 3, 2)), [0, 1, 2, 3, 4, 7]);
  assert.equal(Array.from(embeddingIndices(ds, 2, 0)), [0, 1, 2, 4, 5, 8]);
  const data = Float32Array.from({ length: 12 * 5 }, (_, i) => Math.sin(i * 1.3) + (i >= 30 ? 4 : 0));
  const first = await umap2d(data, 12, 5, 7);
  assert.equal(await umap2d(data, 12, 5, 7), first, 'the same seed, the same map');
  assert.not.equal(await umap2d(data, 12, 5, 8), first);
  assert.ok(first.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  await umap2d(data, 2, 5, 0).then(
    () => assert.unreachable('two images make no map'),
    (e: Error) => assert.match(e.message, /at least 3/),
  );
});

test("smkd show embedding: one point per image, one legend entry per class, the thumbnails, from the run's test split", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'show-'));
  const models = await tinyRun(dir);
  const log = console.log;
  try {
    const out = path.join(dir, 'map.svg');
    const printed: string[] = [];
    console.log = (m: string) => printed.push(m);
    await program().parseAsync(['node', 'smkd', 'show', 'embedding', dir, '-o', out, '--classes', '6', '--per-class', '5', '--thumbnails', '4']);
    console.log = log;
    const cfg = validateConfig(JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')));
    const test = (await openSplits(cfg.data, cfg.seed)).test;
    assert.match(printed[0], /map\.svg: 30 images of 6 classes of .*, 128-d features, 4 thumbnails/);
    const svg = await readFile(out, 'utf8');
    assert.match(svg, /^<svg/);
    const points = markGroup(svg, 'mark-symbol role-mark').match(/<path [^>]*fill="(#[0-9a-f]{6})"/g) ?? [];
    assert.is(points.length, 30, 'one point per image');
    assert.is(new Set(points.map((p) => /fill="([^"]+)"/.exec(p)![1])).size, 6, 'a colour per class');
    assert.match(svg, /legend titled 'class' for fill color with 6 values/);
    assert.is((svg.match(/<g class="mark-symbol role-legend-symbol"/g) ?? []).length, 6, 'one legend symbol per class');
    const labels = [...svg.matchAll(/<g class="mark-text role-legend-label"[^>]*><text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    assert.equal(labels, test.classes.slice(0, 6), 'the first six test classes, in order');
    const images = svg.match(/<image [^>]*href="data:image\/png;base64,[A-Za-z0-9+/=]+"/g) ?? [];
    assert.is(images.length, 4, 'four thumbnails');
    assert.match(svg, /UMAP 1/);

    // The map's points are the capped test images; the same seed gives the same map.
    const again = await showEmbedding({ checkpoint: dir, output: out, classes: 6, perClass: 5, thumbnails: 4 });
    assert.equal(
      again.points.map((p) => p.index),
      Array.from(embeddingIndices(test, 6, 5)),
    );
    assert.equal(
      again.points.map((p) => p.className),
      Array.from(embeddingIndices(test, 6, 5), (i) => test.classes[test.label(i)]),
    );
    const third = await showEmbedding({ checkpoint: dir, output: out, classes: 6, perClass: 5, thumbnails: 4 });
    assert.equal(third.points, again.points);
  } finally {
    console.log = log;
    models.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test('smkd show embedding names bad input: a missing checkpoint, a missing output folder, a bad count', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'show-'));
  try {
    const run = (args: string[]) => program().parseAsync(['node', 'smkd', 'show', 'embedding', ...args]);
    await rejects(run([path.join(dir, 'no-such-run'), '-o', path.join(dir, 'e.svg')]), /checkpoint .*no-such-run: no such file or folder/);
    await rejects(run([path.join(dir, 'no-such-run'), '-o', path.join(dir, 'missing', 'e.svg')]), /-o .*missing.*does not exist/);
    await rejects(showEmbedding({ checkpoint: dir, output: path.join(dir, 'e.svg'), classes: 0 }), /--classes 0: expected an integer of at least 1/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
