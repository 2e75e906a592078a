// `smkd embed`: every image under a folder (any depth) and listed files, from a freshly built tiny
// checkpoint, into a safetensors file whose metadata names the images in row order and whose rows
// equal a direct forward of the model; an unreadable image is skipped with one warning naming it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, symlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fromArray, noGrad, tidy } from '../../engine/index.js';
import { readSafetensors, toFloat32 } from '../../engine/index.js';
import { saveModel } from '../../model/index.js';
import { vitConfig } from '../../model/configs.js';
import { fewShotFeatures } from '../../model/features.js';
import { VisionTransformer } from '../../model/vit.js';
import { program } from '../../train/cli.js';
import { decodeImage, evalTransform, NORMALIZATION, polarityWarning, type RgbImage } from '../../train/data/index.js';
import { listImages, readFileList } from '../../train/embed.js';
import { close, gpu } from '../helpers/check.js';
import { randomImage } from '../helpers/images.js';

const test = suite('embed');
test.before(gpu);

/** A PNG or JPEG of random pixels. */
/** The folder: root/b.png, root/cat/a.png, root/cat/deep/c.jpg, root/cat/broken.png, root/dog/d.png, root/notes.txt, root/.hidden.png. */
async function folder(root: string): Promise<void> {
  await mkdir(path.join(root, 'cat', 'deep'), { recursive: true });
  await mkdir(path.join(root, 'dog'));
  await randomImage(path.join(root, 'b.png'), 40, 30, 1);
  await randomImage(path.join(root, 'cat', 'a.png'), 21, 50, 2);
  await randomImage(path.join(root, 'cat', 'deep', 'c.jpg'), 33, 33, 3);
  await randomImage(path.join(root, 'dog', 'd.png'), 64, 64, 4);
  await randomImage(path.join(root, '.hidden.png'), 8, 8, 5);
  await writeFile(path.join(root, 'cat', 'broken.png'), 'not an image');
  await writeFile(path.join(root, 'notes.txt'), 'not an image either');
}

test('image lists: folders at any depth in path order, files as given, list files with comments', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'embed-'));
  try {
    const root = path.join(dir, 'imgs');
    await folder(root);
    const inFolder = ['b.png', 'cat/a.png', 'cat/broken.png', 'cat/deep/c.jpg', 'dog/d.png'].map((f) => path.join(root, f));
    assert.equal(await listImages([root]), inFolder);
    assert.equal(await listImages([path.join(root, 'b.png'), path.join(root, 'dog')]), [path.join(root, 'b.png'), path.join(root, 'dog', 'd.png')]);
    const list = path.join(dir, 'list.txt');
    await writeFile(list, `# images\n${path.join(root, 'b.png')}\n\n  ${path.join(root, 'dog', 'd.png')}  # a dog\n`);
    assert.equal(await readFileList(list), [path.join(root, 'b.png'), path.join(root, 'dog', 'd.png')]);
    try {
      await listImages([path.join(root, 'missing.png')]);
      assert.unreachable('a missing input is an error');
    } catch (e) {
      assert.match((e as Error).message, /missing\.png: no such file/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('image lists: a link back to a parent is passed over with one warning; every folder is read once, however it is reached', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'embed-'));
  try {
    const root = path.join(dir, 'imgs');
    await folder(root);
    await symlink(root, path.join(root, 'cat', 'deep', 'loop'));
    await symlink(path.join(root, 'dog'), path.join(root, 'dog-again'));
    const warnings: string[] = [];
    const files = await listImages([root], (m) => warnings.push(m));
    assert.equal(
      files,
      ['b.png', 'cat/a.png', 'cat/broken.png', 'cat/deep/c.jpg', 'dog/d.png'].map((f) => path.join(root, f)),
    );
    assert.is(warnings.length, 1);
    assert.match(warnings[0], /embed: warning: skipped 2 folder link\(s\)/);
    assert.ok(warnings[0].includes(path.join(root, 'cat', 'deep', 'loop')) && warnings[0].includes(path.join(root, 'dog-again')), warnings[0]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('smkd embed: metadata paths in row order, rows equal a direct forward, one warning for the unreadable image', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'embed-'));
  const vit = new VisionTransformer(vitConfig('tiny', { depth: 2 })).build({ seed: 7, requiresGrad: false });
  const warn = console.warn;
  const log = console.log;
  try {
    const root = path.join(dir, 'imgs');
    await folder(root);
    const ckpt = path.join(dir, 'tiny.safetensors');
    await saveModel(ckpt, vit);
    const list = path.join(dir, 'list.txt');
    await writeFile(list, `${path.join(root, 'b.png')}\n`);
    const warnings: string[] = [];
    console.warn = (m: string) => warnings.push(m);
    console.log = () => undefined;
    const out = path.join(dir, 'emb.safetensors');
    // Batches of 2: the unreadable image falls inside a batch, the last batch is partial.
    await program().parseAsync([
      'node',
      'smkd',
      'embed',
      ckpt,
      path.join(root, 'cat'),
      path.join(root, 'dog'),
      '--list',
      list,
      '-o',
      out,
      '--normalize',
      'imagenet',
      '--batch-size',
      '2',
      '--shift-tta',
      '0',
    ]);
    const outCls = path.join(dir, 'emb-cls.safetensors');
    await program().parseAsync(['node', 'smkd', 'embed', ckpt, root, '-o', outCls, '--normalize', 'imagenet', '--features', 'cls', '--shift-tta', '0']);
    console.warn = warn;
    console.log = log;
    const broken = path.join(root, 'cat', 'broken.png');
    assert.is(warnings.length, 2, 'one warning per run');
    for (const w of warnings) assert.ok(w.includes(broken), w);

    const f = await readSafetensors(out);
    const paths = JSON.parse(f.metadata.paths) as string[];
    assert.equal(
      paths,
      ['cat/a.png', 'cat/deep/c.jpg', 'dog/d.png', 'b.png'].map((p) => path.join(root, p)),
    );
    assert.equal(JSON.parse(f.metadata.skipped), [broken]);
    assert.equal([f.metadata.feature_kind, f.metadata.components, f.metadata.count, f.metadata.dim], ['concat', '["cls","weighted"]', '4', '128']);
    assert.equal(JSON.parse(f.metadata.normalize), NORMALIZATION.imagenet);
    assert.is(f.metadata.shift_tta, '0');
    assert.is(JSON.parse(f.metadata.model).numHeads, 2);
    const got = f.tensors.get('features')!;
    assert.equal(got.shape, [4, 128]);

    // The same images through the evaluation transform and the model, directly.
    const size = 32;
    const len = 3 * size * size;
    const images = new Float32Array(paths.length * len);
    for (const [k, p] of paths.entries()) evalTransform(await decodeImage(p), size, NORMALIZATION.imagenet, images, k * len);
    vit.eval();
    const want = tidy(() => noGrad(() => fewShotFeatures(vit.forward(fromArray(images, [paths.length, 3, size, size]), { clsAttention: true }), ['cls', 'weighted'])));
    const wantData = await want.toArray();
    want.dispose();
    close(toFloat32(got), wantData, 1e-5, 'embedded features');

    // --features cls over the whole folder: the [cls] half of the same rows, in the folder's order.
    const c = await readSafetensors(outCls);
    const cPaths = JSON.parse(c.metadata.paths) as string[];
    assert.equal(
      cPaths,
      ['b.png', 'cat/a.png', 'cat/deep/c.jpg', 'dog/d.png'].map((p) => path.join(root, p)),
    );
    assert.equal(c.tensors.get('features')!.shape, [4, 64]);
    assert.is(c.metadata.feature_kind, 'cls');
    const row = cPaths.map((p) => paths.indexOf(p));
    close(
      toFloat32(c.tensors.get('features')!),
      Float32Array.from({ length: 4 * 64 }, (_, i) => wantData[row[Math.floor(i / 64)] * 128 + (i % 64)]),
      1e-5,
      'cls features',
    );
  } finally {
    console.warn = warn;
    console.log = log;
    vit.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test('images of the opposite polarity to the training images are named; -o into a missing folder fails before any work', async () => {
  const trained = { mean: [0.08, 0.08, 0.08], std: [0.24, 0.24, 0.24] } as const;
  const page = (v: number): RgbImage => ({ width: 4, height: 4, data: new Uint8Array(48).fill(v) });
  const light = polarityWarning([page(240), page(230)], trained, 'embed: 2 images');
  assert.ok(light && /mean intensity 0\.9.*trained on images of mean 0\.08.*--invert/.test(light), light);
  assert.is(polarityWarning([page(20)], trained, 'x'), undefined);
  assert.is(polarityWarning([page(128)], { mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] }, 'x'), undefined);
  const dark = polarityWarning([page(10)], { mean: [0.9, 0.9, 0.9], std: [0.2, 0.2, 0.2] }, 'x');
  assert.ok(dark && /leave out --invert/.test(dark), dark);
  const dir = await mkdtemp(path.join(tmpdir(), 'embed-'));
  try {
    await program().parseAsync(['node', 'smkd', 'embed', path.join(dir, 'no-such-run'), dir, '-o', path.join(dir, 'missing', 'f.safetensors')]);
    assert.unreachable('a missing output folder is an error');
  } catch (e) {
    assert.match((e as Error).message, /-o .*missing.*does not exist/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
