// The query's attention: the image as the model sees it, then one panel per head of the last block's
// [cls] attention over the patches, in viridis laid over the image (as `smkd show attention` draws it:
// each head scaled to its own largest value, one flat colour per patch, the same blend).
import { interpolateViridis } from 'd3-scale-chromatic';
import type { RgbImage } from '../../train/data/dataset.js';
import { ATTENTION_ALPHA, type ClsAttentionMaps } from '../../train/show/attention-maps.js';
import { rgbCanvas } from './dom.js';

const GAP = 10;
const LABEL = 20;

export function drawAttention(canvas: HTMLCanvasElement, seen: RgbImage, maps: ClsAttentionMaps, patchSize: number, scale = 6): void {
  const side = seen.width * scale;
  const cell = patchSize * scale;
  const N = maps.gh * maps.gw;
  const panels = 1 + maps.heads;
  canvas.width = panels * side + (panels - 1) * GAP;
  canvas.height = LABEL + side;
  const ctx = canvas.getContext('2d')!;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = false;
  ctx.font = '13px system-ui, sans-serif';
  ctx.textBaseline = 'top';
  const image = rgbCanvas(seen);
  for (let p = 0; p < panels; p++) {
    const x0 = p * (side + GAP);
    ctx.globalAlpha = 1;
    ctx.fillStyle = '#444';
    ctx.fillText(p === 0 ? 'query' : `head ${p}`, x0, 2);
    ctx.drawImage(image, x0, LABEL, side, side);
    if (p === 0) continue;
    const cells = maps.data.subarray((p - 1) * N, p * N);
    const top = Math.max(...cells);
    ctx.globalAlpha = ATTENTION_ALPHA;
    cells.forEach((v, n) => {
      ctx.fillStyle = interpolateViridis(top > 0 ? v / top : 0);
      ctx.fillRect(x0 + (n % maps.gw) * cell, LABEL + Math.floor(n / maps.gw) * cell, cell, cell);
    });
  }
  ctx.globalAlpha = 1;
}
