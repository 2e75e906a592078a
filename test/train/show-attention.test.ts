// `smkd show attention`: the per-head [cls] attention of the last block against a float64 reference
// and against the fused head-averaged kernel; a hand-built attention pattern gives known pixels; the
// command end to end prepares images as the checkpoint's metadata says and writes one PNG per image;
// bad input is named.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { fromArray, noGrad, tidy } from '../../engine/index.js';
import { Rng } from '../../engine/rng.js';
import { saveModel } from '../../model/index.js';
import { vitConfig } from '../../model/configs.js';
import { VisionTransformer } from '../../model/vit.js';
import { program } from '../../train/cli.js';
import { decodeImage, evalTransform, type RgbImage } from '../../train/data/index.js';
import { attentionPicture, clsAttentionMaps } from '../../train/show/attention.js';
import { writePng } from '../../train/show/input.js';
import { close, gpu, rejects } from '../helpers/check.js';
import { randomImage } from '../helpers/images.js';

const test = suite('show attention');
test.before(gpu);

/** A PNG file's pixels as RGB. */
async function readRgb(file: string): Promise<RgbImage> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

test('per-head [cls] attention: float64 reference of a one-block ViT, and the heads averaged equal the fused clsAttention', async () => {
  const c = vitConfig('tiny', { depth: 1, numHeads: 4, imgSize: 24, patchSize: 8 });
  const vit = new VisionTransformer(c).build({ seed: 11, requiresGrad: false }).eval();
  try {
    const B = 2;
    const size = 24;
    const r = new Rng(3);
    const images = Float32Array.from({ length: B * 3 * size * size }, () => r.normal());
    const maps = await clsAttentionMaps(vit, images, B, size);
    assert.equal([maps.count, maps.heads, maps.gh, maps.gw], [B, 4, 3, 3]);
    // Reference: the block's input from the patch embedding, then LayerNorm, qkv and softmax in float64.
    const sd = await vit.stateDict();
    const p = (k: string): Float32Array => sd.get(k)!.data as Float32Array;
    const emb = tidy(() => noGrad(() => vit.patchEmbed.forward(fromArray(images, [B, 3, size, size])).tokens));
    const patches = await emb.toArray();
    emb.dispose();
    const D = c.embedDim;
    const N = 9;
    const T = N + 1;
    const h = 4;
    const dh = D / h;
    const want = new Float64Array(B * h * N);
    for (let b = 0; b < B; b++) {
      const x = Array.from({ length: T }, (_, t) =>
        Array.from({ length: D }, (_, d) => (t === 0 ? p('cls_token')[d] : patches[(b * N + t - 1) * D + d]) + p('pos_embed')[t * D + d]),
      );
      const n1 = x.map((row) => {
        const mu = row.reduce((a, v) => a + v, 0) / D;
        const vr = row.reduce((a, v) => a + (v - mu) ** 2, 0) / D;
        return row.map((v, d) => ((v - mu) / Math.sqrt(vr + c.lnEps)) * p('blocks.0.norm1.weight')[d] + p('blocks.0.norm1.bias')[d]);
      });
      const proj = (row: number[], j: number): number => row.reduce((a, v, d) => a + v * p('blocks.0.attn.qkv.weight')[j * D + d], p('blocks.0.attn.qkv.bias')[j]);
      for (let head = 0; head < h; head++) {
        const q = Array.from({ length: dh }, (_, e) => proj(n1[0], head * dh + e));
        const scores = n1.map((row) => q.reduce((a, qe, e) => a + qe * proj(row, D + head * dh + e), 0) / Math.sqrt(dh));
        const top = Math.max(...scores);
        const z = scores.reduce((a, s) => a + Math.exp(s - top), 0);
        for (let n = 0; n < N; n++) want[(b * h + head) * N + n] = Math.exp(scores[n + 1] - top) / z;
      }
    }
    close(maps.data, want, 1e-4, 'per-head [cls] attention');
    // The fused kernel's head mean, computed independently of the matmul + softmax path.
    const fused = tidy(() => noGrad(() => vit.forward(fromArray(images, [B, 3, size, size]), { clsAttention: true }).clsAttention!));
    const mean = await fused.toArray();
    fused.dispose();
    close(
      Float64Array.from({ length: B * N }, (_, i) => {
        const [b, n] = [Math.floor(i / N), i % N];
        let s = 0;
        for (let k = 0; k < h; k++) s += maps.data[(b * h + k) * N + n];
        return s / h;
      }),
      mean,
      1e-5,
      'head mean vs clsAttention',
    );
  } finally {
    vit.dispose();
  }
});

test('a hand-built attention pattern gives known pixels: viridis over gray at 0.6, nearest cells, remainder gray, white gaps', async () => {
  // 30 px crop, 14 px patches: a 2 x 2 grid and a 2-pixel remainder; shown twice as large.
  const size = 30;
  const gray = 100;
  const seen: RgbImage = { width: size, height: size, data: new Uint8Array(size * size * 3).fill(gray) };
  seen.data.set([200, 10, 30], 3 * (size * 1 + 2)); // one coloured pixel at (x 2, y 1)
  // Head 1: cells [1, 0, 0.5, 0] of its maximum; head 2: uniform (every cell at its maximum).
  const maps = Float32Array.of(0.4, 0, 0.2, 0, 0.1, 0.1, 0.1, 0.1);
  const pic = attentionPicture(seen, maps, 2, { gh: 2, gw: 2, patchSize: 14 }, 2);
  const dir = await mkdtemp(path.join(tmpdir(), 'show-'));
  try {
    const file = path.join(dir, 'a.png');
    await writePng(file, pic);
    const got = await readRgb(file);
    const W = 60;
    assert.equal([got.width, got.height], [3 * W + 2 * 4, W], '3 panels of 60 px with 4-px gaps');
    const px = (x: number, y: number): number[] => Array.from(got.data.subarray(3 * (y * got.width + x), 3 * (y * got.width + x) + 3));
    // matplotlib's viridis at 0, 0.5 and 1.
    const [low, mid, high] = [
      [0x44, 0x01, 0x54],
      [0x21, 0x91, 0x8c],
      [0xfd, 0xe7, 0x25],
    ];
    const blend = (cmap: number[], g = gray): number[] => cmap.map((v) => Math.round(0.4 * g + 0.6 * v));
    // Panel 0: the image, each pixel a 2 x 2 block.
    assert.equal(px(0, 0), [gray, gray, gray]);
    assert.equal(px(4, 2), [200, 10, 30]);
    assert.equal(px(5, 3), [200, 10, 30]);
    // The gaps are white.
    assert.equal(px(60, 10), [255, 255, 255]);
    assert.equal(px(63, 10), [255, 255, 255]);
    const head = (k: number, x: number, y: number): number[] => px(k * (W + 4) + x, y);
    // Head 1: top-left max, top-right zero, bottom-left half, bottom-right zero; cells 28 px wide.
    assert.equal(head(1, 0, 0), blend(high));
    assert.equal(head(1, 27, 27), blend(high));
    assert.equal(head(1, 28, 0), blend(low));
    assert.equal(head(1, 10, 30), blend(mid));
    assert.equal(head(1, 55, 55), blend(low));
    // The coloured pixel shows through as its gray level under the cell colour.
    assert.equal(head(1, 4, 2), blend(high, (200 + 10 + 30) / 3));
    // Pixels outside the patch grid (x or y >= 56) stay gray.
    assert.equal(head(1, 57, 10), [gray, gray, gray]);
    assert.equal(head(2, 10, 58), [gray, gray, gray]);
    // Head 2: uniform attention, every cell at the top of the scale.
    for (const [x, y] of [
      [0, 0],
      [30, 0],
      [0, 30],
      [55, 55],
    ])
      assert.equal(head(2, x, y), blend(high));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('smkd show attention: one PNG per image, prepared as the file records (resize, inversion, normalisation), equal to the picture of a direct forward', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'show-'));
  const vit = new VisionTransformer(vitConfig('tiny', { depth: 2 })).build({ seed: 4, requiresGrad: false });
  const log = console.log;
  try {
    const ckpt = path.join(dir, 'tiny.safetensors');
    const normalize = { mean: [0.2, 0.3, 0.4], std: [0.5, 0.25, 0.3] } as const;
    await saveModel(ckpt, vit, { preprocessing: JSON.stringify({ imageSize: 36, invert: true, normalize, resizeRatio: 1, features: 'cls' }) });
    const files = [path.join(dir, 'wide.png'), path.join(dir, 'sub', 'wide.png'), path.join(dir, 'tall.png')];
    await mkdir(path.join(dir, 'sub'));
    await randomImage(files[0], 50, 40, 1);
    await randomImage(files[1], 45, 45, 2);
    await randomImage(files[2], 33, 61, 3);
    const out = path.join(dir, 'out');
    await mkdir(out);
    const printed: string[] = [];
    console.log = (m: string) => printed.push(m);
    await program().parseAsync(['node', 'smkd', 'show', 'attention', ckpt, ...files, '-o', out, '--scale', '3']);
    console.log = log;
    const written = ['wide-attention.png', 'wide-2-attention.png', 'tall-attention.png'].map((f) => path.join(out, f));
    assert.equal(printed, [written.join('\n')]);

    // Independently: decode at 36 px inverted, centre-crop 32 px, normalise; forward; draw.
    const size = 32;
    const len = 3 * size * size;
    const input = new Float32Array(files.length * len);
    for (const [k, f] of files.entries()) evalTransform(await decodeImage(f, { resize: 36, invert: true }), size, normalize, input, k * len, 1);
    vit.eval();
    const heads = tidy(() => noGrad(() => vit.forward(fromArray(input, [files.length, 3, size, size]), { clsAttentionHeads: true }).clsAttentionHeads!));
    const maps = await heads.toArray();
    heads.dispose();
    for (const [k, file] of written.entries()) {
      const got = await readRgb(file);
      assert.equal([got.width, got.height], [3 * 96 + 2 * 4, 96], `${file}: the image and 2 heads of 96 px`);
      const seen: RgbImage = { width: size, height: size, data: new Uint8Array(len) };
      for (let c = 0; c < 3; c++) {
        for (let i = 0; i < size * size; i++)
          seen.data[3 * i + c] = Math.min(255, Math.max(0, Math.round((input[k * len + c * size * size + i] * normalize.std[c] + normalize.mean[c]) * 255)));
      }
      const want = attentionPicture(seen, maps.subarray(k * 2 * 64, (k + 1) * 2 * 64), 2, { gh: 8, gw: 8, patchSize: 4 }, 3);
      let worst = 0;
      for (let i = 0; i < want.data.length; i++) worst = Math.max(worst, Math.abs(want.data[i] - got.data[i]));
      assert.ok(worst <= 1, `${file}: largest pixel difference ${worst}`);
    }
  } finally {
    console.log = log;
    vit.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test('smkd show attention names bad input: a missing image, a missing checkpoint, a missing output folder', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'show-'));
  const vit = new VisionTransformer(vitConfig('tiny', { depth: 1 })).build({ seed: 1, requiresGrad: false });
  try {
    const ckpt = path.join(dir, 'tiny.safetensors');
    await saveModel(ckpt, vit);
    const img = path.join(dir, 'a.png');
    await randomImage(img, 32, 32, 1);
    const run = (args: string[]) => program().parseAsync(['node', 'smkd', 'show', 'attention', ...args]);
    await rejects(run([ckpt, img, path.join(dir, 'nope.png'), '-o', dir]), /image .*nope\.png: no such file/);
    await rejects(run([path.join(dir, 'no-such-run'), img, '-o', dir]), /checkpoint .*no-such-run: no such file or folder/);
    await rejects(run([ckpt, img, '-o', path.join(dir, 'missing')]), /-o .*missing: no such folder/);
    await rejects(run([ckpt, path.join(dir, 'tiny.safetensors'), '-o', dir]), /image .*tiny\.safetensors could not be decoded/);
  } finally {
    vit.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
