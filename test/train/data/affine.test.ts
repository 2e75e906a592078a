import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../../engine/rng.js';
import { affineView, drawAffine, type AffineView } from '../../../train/data/affine.js';
import type { RgbImage } from '../../../train/data/dataset.js';
import { warpRef } from '../../ref/image.js';

const test = suite('stroke augmentation (affine views)');

function randomImage(width: number, height: number, seed: number): RgbImage {
  const rng = new Rng(seed);
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => rng.int(0, 255)) };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.is(a.length, b.length, 'lengths');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('no rotation, scale, shift or window: the view is the image itself', () => {
  const img = randomImage(23, 23, 1);
  const out = new Float32Array(3 * 23 * 23);
  affineView(img, { size: 23, rotation: 0, scale: 0, shift: 0, window: [1, 1] }, new Rng(2), out);
  const chw = new Float32Array(3 * 23 * 23);
  for (let p = 0; p < 23 * 23; p++) for (let c = 0; c < 3; c++) chw[c * 23 * 23 + p] = img.data[p * 3 + c] / 255;
  assert.ok(maxDiff(out, chw) < 1e-6);
});

test('random views match a float64 bilinear warp through the drawn map (odd sizes, shrink and zoom)', () => {
  const cases: [number, number, AffineView][] = [
    [28, 28, { size: 28, rotation: 15, scale: 0.15, shift: 0.1, window: [1, 1] }],
    [31, 29, { size: 17, rotation: 40, scale: 0.3, shift: 0.2, window: [1, 1] }],
    [28, 28, { size: 13, rotation: 10, scale: 0.1, shift: 0.05, window: [0.4, 0.7] }],
  ];
  for (const [W, H, view] of cases) {
    const img = randomImage(W, H, W * H);
    for (let seed = 0; seed < 4; seed++) {
      const out = new Float32Array(3 * view.size * view.size);
      affineView(img, view, new Rng(seed), out, 0);
      const m = drawAffine(view, new Rng(seed));
      const want = warpRef(img, view.size, [m.a, -m.b, m.b, m.a], [m.cx, m.cy]);
      assert.ok(maxDiff(out, want) < 1e-5, `${W}x${H} -> ${view.size}, seed ${seed}: ${maxDiff(out, want)}`);
    }
  }
});

test('drawn maps stay within the ranges: rotation, scale over window, shift around a window inside the image', () => {
  const view: AffineView = { size: 14, rotation: 15, scale: 0.15, shift: 0.1, window: [0.4, 0.7] };
  const rng = new Rng(11);
  let maxAngle = 0;
  for (let i = 0; i < 2000; i++) {
    const { a, b, cx, cy } = drawAffine(view, rng);
    const k = Math.hypot(a, b);
    const angle = (Math.abs(Math.atan2(b, a)) * 180) / Math.PI;
    maxAngle = Math.max(maxAngle, angle);
    assert.ok(angle <= 15 + 1e-9, `angle ${angle}`);
    assert.ok(k >= 0.4 / 1.15 - 1e-9 && k <= 0.7 / 0.85 + 1e-9, `window / scale ${k}`);
    for (const c of [cx, cy]) assert.ok(Math.abs(c) <= 1 - 0.4 + 0.2 + 1e-9, `centre ${c}`);
  }
  assert.ok(maxAngle > 14, 'the whole rotation range is drawn');
});

test('the reference: a quarter turn about the centre moves whole pixels', () => {
  const img = randomImage(12, 12, 9);
  const out = new Float32Array(3 * 144);
  // The reference itself, checked on a case worked out by hand: source x = 11 - v, y = u.
  const want = warpRef(img, 12, [0, -1, 1, 0], [0, 0]);
  for (let v = 0; v < 12; v++) for (let u = 0; u < 12; u++) for (let c = 0; c < 3; c++) out[c * 144 + v * 12 + u] = img.data[(u * 12 + 11 - v) * 3 + c] / 255;
  assert.ok(maxDiff(out, want) < 1e-6, 'the reference rotates exactly');
});

test.run();
