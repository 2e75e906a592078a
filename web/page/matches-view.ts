// The query's patch matches into a class's image: the two side by side as the model sees them, the
// patch grid on both, and for each query patch an arc to its most similar patch of the other image,
// coloured by the cosine (the lines and colours of `smkd show matches`, drawn on a canvas).
import type { RgbImage } from '../../train/data/dataset.js';
import { MATCH_GAP, matchLines, type PatchMatches } from '../../train/show/patch-matches.js';
import { rgbCanvas } from './dom.js';

export function drawMatches(canvas: HTMLCanvasElement, query: RgbImage, support: RgbImage, m: PatchMatches, patchSize: number, scale = 8): void {
  const layout = { patchSize, scale, size: query.width, gh: m.gh, gw: m.gw };
  const side = query.width * scale;
  const offset = side + MATCH_GAP;
  const cell = patchSize * scale;
  canvas.width = 2 * side + MATCH_GAP;
  canvas.height = side;
  const ctx = canvas.getContext('2d')!;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(rgbCanvas(query), 0, 0, side, side);
  ctx.drawImage(rgbCanvas(support), offset, 0, side, side);
  ctx.strokeStyle = 'rgba(136, 136, 136, 0.6)';
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (const x0 of [0, offset]) {
    for (let c = 1; c < m.gw; c++) {
      ctx.moveTo(x0 + c * cell + 0.5, 0);
      ctx.lineTo(x0 + c * cell + 0.5, m.gh * cell);
    }
    for (let r = 1; r < m.gh; r++) {
      ctx.moveTo(x0, r * cell + 0.5);
      ctx.lineTo(x0 + m.gw * cell, r * cell + 0.5);
    }
  }
  ctx.stroke();
  const dot = Math.max(2, Math.round(cell / 16));
  for (const l of matchLines(m.matches, layout)) {
    // A shallow arc, so that matches along one row of patches do not lie on each other; a white halo
    // keeps the dark end of the colour scale visible on the black images.
    const arc = (): void => {
      ctx.beginPath();
      ctx.moveTo(l.x1, l.y1);
      ctx.quadraticCurveTo((l.x1 + l.x2) / 2, (l.y1 + l.y2) / 2 - 0.15 * Math.abs(l.x2 - l.x1), l.x2, l.y2);
    };
    arc();
    ctx.strokeStyle = 'rgba(255, 255, 255, 0.8)';
    ctx.lineWidth = 4;
    ctx.stroke();
    arc();
    ctx.strokeStyle = l.colour;
    ctx.lineWidth = 2;
    ctx.stroke();
    for (const [x, y] of [
      [l.x1, l.y1],
      [l.x2, l.y2],
    ]) {
      ctx.beginPath();
      ctx.arc(x, y, dot, 0, 2 * Math.PI);
      ctx.fillStyle = l.colour;
      ctx.fill();
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 1;
      ctx.stroke();
    }
  }
}
