// `smkd show matches`: the pairs drawn agree with a float64 CPU cosine argmax of the same patch tokens;
// the lines join patch centres across the gap, only the hidden patches with a block mask; the PNG has
// the size of two scaled crops and the gap; bad input is named.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { fromArray, noGrad, tidy } from '../../engine/index.js';
import { Rng } from '../../engine/rng.js';
import { saveModel } from '../../model/index.js';
import { vitConfig } from '../../model/configs.js';
import { blockMask } from '../../model/masking.js';
import { VisionTransformer } from '../../model/vit.js';
import { program } from '../../train/cli.js';
import { decodeImage, evalTransform, NORMALIZATION } from '../../train/data/index.js';
import { MATCH_GAP, matchLines, patchMatches, showMatches } from '../../train/show/matches.js';
import { gpu, rejects } from '../helpers/check.js';
import { randomImage } from '../helpers/images.js';

const test = suite('show matches');
test.before(gpu);

/** For each row of a [N, D], the row of b [M, D] of largest cosine, and that cosine, in float64. */
function cpuArgmax(a: Float32Array, b: Float32Array, N: number, M: number, D: number): { to: number; cos: number; runnerUp: number }[] {
  const norm = (x: Float32Array, r: number) => Math.sqrt(Array.from(x.subarray(r * D, (r + 1) * D)).reduce((s, v) => s + v * v, 0));
  return Array.from({ length: N }, (_, n) => {
    const cos = Array.from({ length: M }, (_, m) => {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += a[n * D + d] * b[m * D + d];
      return dot / (norm(a, n) * norm(b, m));
    });
    const to = cos.indexOf(Math.max(...cos));
    return { to, cos: cos[to], runnerUp: Math.max(...cos.filter((_, m) => m !== to)) };
  });
}

test('patchMatches: every patch of A matched to the float64 cosine argmax of the same tokens in B', async () => {
  const vit = new VisionTransformer(vitConfig('tiny', { depth: 2, imgSize: 28, patchSize: 4 })).build({ seed: 9, requiresGrad: false });
  try {
    const size = 28;
    const r = new Rng(5);
    const images = Float32Array.from({ length: 2 * 3 * size * size }, () => r.normal());
    const m = await patchMatches(vit, images, size);
    assert.equal([m.gh, m.gw, m.matches.length], [7, 7, 49]);
    const out = tidy(() => noGrad(() => vit.forward(fromArray(images, [2, 3, size, size])).tokens));
    const tokens = await out.toArray();
    out.dispose();
    const D = 64;
    const T = 50;
    const patch = (img: number) => Float32Array.from({ length: 49 * D }, (_, i) => tokens[(img * T + 1) * D + i]);
    const want = cpuArgmax(patch(0), patch(1), 49, 49, D);
    m.matches.forEach((got, n) => {
      assert.is(got.from, n);
      // A near-tie may go either way in float32: then the cosine of the pick must still be the best.
      if (want[n].cos - want[n].runnerUp > 1e-5) assert.is(got.to, want[n].to, `patch ${n}`);
      assert.ok(Math.abs(got.similarity - want[n].cos) < 1e-5, `patch ${n}: cosine ${got.similarity} vs ${want[n].cos}`);
    });
    assert.ok(new Set(m.matches.map((x) => x.to)).size > 1, 'not every patch goes to one place');
  } finally {
    vit.dispose();
  }
});

test('match lines: patch centres of A to patch centres of B across the gap; a mask keeps only its hidden patches', () => {
  const layout = { patchSize: 14, scale: 8, size: 28, gh: 2, gw: 2 };
  const m = [
    { from: 0, to: 3, similarity: 0.9 },
    { from: 1, to: 1, similarity: -0.2 },
    { from: 2, to: 0, similarity: 0.5 },
    { from: 3, to: 2, similarity: 1.2 },
  ];
  const lines = matchLines(m, layout);
  const W = 28 * 8;
  // Centres of a 112-px cell: 56 and 168.
  assert.equal(
    lines.map((l) => [l.x1, l.y1, l.x2, l.y2]),
    [
      [56, 56, W + MATCH_GAP + 168, 168],
      [168, 56, W + MATCH_GAP + 168, 56],
      [56, 168, W + MATCH_GAP + 56, 56],
      [168, 168, W + MATCH_GAP + 56, 168],
    ],
  );
  // viridis: below 0 as 0, 0.5 the middle, above 1 as 1.
  assert.equal(
    lines.map((l) => l.colour),
    ['#bddf26', '#440154', '#21918c', '#fde725'],
  );
  const hidden = Uint8Array.of(0, 1, 1, 0);
  assert.equal(
    matchLines(m, layout, hidden).map((l) => l.from),
    [1, 2],
  );
});

test('smkd show matches: the PNG of two scaled crops and the gap; the lines drawn are the pairs of a direct forward; --masked draws the hidden patches only', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'show-'));
  const vit = new VisionTransformer(vitConfig('tiny', { depth: 2 })).build({ seed: 6, requiresGrad: false });
  const log = console.log;
  try {
    const ckpt = path.join(dir, 'tiny.safetensors');
    await saveModel(ckpt, vit);
    const [a, b] = [path.join(dir, 'a.png'), path.join(dir, 'b.jpg')];
    await randomImage(a, 40, 36, 1);
    await randomImage(b, 32, 32, 2);
    const out = path.join(dir, 'm.png');
    const printed: string[] = [];
    console.log = (msg: string) => printed.push(msg);
    await program().parseAsync(['node', 'smkd', 'show', 'matches', ckpt, a, b, '-o', out, '--scale', '2']);
    console.log = log;
    assert.match(printed[0], /m\.png: 64 of 64 patches of a\.png \(8x8 grid\) joined to their best match in b\.jpg, cosine -?\d\.\d\d to \d\.\d\d/);
    const meta = await sharp(out).metadata();
    assert.equal([meta.format, meta.width, meta.height], ['png', 2 * 64 + MATCH_GAP, 64]);

    // The pairs of the picture from a direct forward of the same prepared images (no run, no metadata: ImageNet statistics).
    const size = 32;
    const len = 3 * size * size;
    const input = new Float32Array(2 * len);
    for (const [k, f] of [a, b].entries()) evalTransform(await decodeImage(f), size, NORMALIZATION.imagenet, input, k * len);
    vit.eval();
    const t = tidy(() => noGrad(() => vit.forward(fromArray(input, [2, 3, size, size])).tokens));
    const tokens = await t.toArray();
    t.dispose();
    const patches = (img: number) => Float32Array.from({ length: 64 * 64 }, (_, i) => tokens[(img * 65 + 1) * 64 + i]);
    const want = cpuArgmax(patches(0), patches(1), 64, 64, 64);
    const shown = await showMatches({ checkpoint: ckpt, imageA: a, imageB: b, output: out, scale: 2 });
    assert.is(shown.lines.length, 64);
    shown.lines.forEach((l, n) => {
      if (want[n].cos - want[n].runnerUp > 1e-5) assert.is(l.to, want[n].to, `patch ${n}`);
      assert.is(l.x2, 64 + MATCH_GAP + ((l.to % 8) + 0.5) * 8, `line ${n} ends at the centre of B's patch ${l.to}`);
    });

    const masked = await showMatches({ checkpoint: ckpt, imageA: a, imageB: b, output: out, scale: 2, maskRatio: 0.4, maskSeed: 3 });
    const mask = blockMask(8, 8, 0.4, new Rng(3));
    const hiddenCells = [...mask.keys()].filter((n) => mask[n]);
    assert.ok(hiddenCells.length > 0 && hiddenCells.length < 64);
    assert.equal(
      masked.lines.map((l) => l.from),
      hiddenCells,
    );
    assert.equal(
      masked.lines.map((l) => l.to),
      hiddenCells.map((n) => shown.matches[n].to),
    );
  } finally {
    console.log = log;
    vit.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test('smkd show matches names bad input: a missing image, a missing checkpoint, a missing output folder, a bad mask ratio', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'show-'));
  const vit = new VisionTransformer(vitConfig('tiny', { depth: 1 })).build({ seed: 1, requiresGrad: false });
  try {
    const ckpt = path.join(dir, 'tiny.safetensors');
    await saveModel(ckpt, vit);
    const img = path.join(dir, 'a.png');
    await randomImage(img, 32, 32, 1);
    const run = (args: string[]) => program().parseAsync(['node', 'smkd', 'show', 'matches', ...args]);
    await rejects(run([ckpt, img, path.join(dir, 'nope.png'), '-o', path.join(dir, 'm.png')]), /image .*nope\.png: no such file/);
    await rejects(run([path.join(dir, 'no-such-run'), img, img, '-o', path.join(dir, 'm.png')]), /checkpoint .*no-such-run: no such file or folder/);
    await rejects(run([ckpt, img, img, '-o', path.join(dir, 'missing', 'm.png')]), /-o .*missing.*does not exist/);
    await rejects(showMatches({ checkpoint: ckpt, imageA: img, imageB: img, output: path.join(dir, 'm.png'), maskRatio: 1.5 }), /mask ratio must be between 0 and 1/);
    const p = program()
      .exitOverride()
      .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    for (const c of p.commands) for (const s of [c, ...c.commands]) s.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    await rejects(p.parseAsync(['node', 'smkd', 'show', 'matches', ckpt, img, img, '--masked', '2']), /'2' is not a ratio/);
  } finally {
    vit.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
