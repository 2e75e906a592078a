// A canvas to draw a character on with mouse, pen or touch (pointer events), and its drawing as the
// model's input. The canvas is the whole sheet of paper, as Omniglot's 105-px drawing canvas was: the
// drawing is never cropped or centred, the strokes are as wide relative to the sheet as Omniglot's, and
// the 28-px image is the sheet averaged over whole 8 x 8 blocks (area averaging).
import { inkFromPaper, PAPER, STROKE } from './paper.js';

const INK = '#111';
const BLANK = '#fff';

export class DrawingPad {
  readonly canvas: HTMLCanvasElement;
  /** Called when a stroke ends or the pad is cleared or filled. */
  onChange: () => void = () => undefined;
  private readonly ctx: CanvasRenderingContext2D;
  private last: { x: number; y: number } | undefined;
  private inked = false;
  /** An image shown with showInk, the pad's image until it is drawn on (exact, not resampled). */
  private shown: Uint8Array | undefined;

  constructor(label: string) {
    this.canvas = document.createElement('canvas');
    this.canvas.width = this.canvas.height = PAPER;
    this.canvas.className = 'pad';
    this.canvas.setAttribute('aria-label', label);
    const ctx = this.canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2D canvas context');
    this.ctx = ctx;
    this.clear();
    this.canvas.addEventListener('pointerdown', (e) => this.down(e));
    this.canvas.addEventListener('pointermove', (e) => this.move(e));
    for (const type of ['pointerup', 'pointercancel'] as const) this.canvas.addEventListener(type, () => this.up());
  }

  /** Whether there is nothing on the sheet. */
  get empty(): boolean {
    return !this.inked;
  }

  clear(): void {
    this.ctx.fillStyle = BLANK;
    this.ctx.fillRect(0, 0, PAPER, PAPER);
    this.inked = false;
    this.shown = undefined;
    this.onChange();
  }

  /** Show ink bytes (bright strokes on black, square) as ink on paper; drawing on goes on from it. */
  showInk(ink: Uint8Array): void {
    const side = Math.round(Math.sqrt(ink.length));
    const small = document.createElement('canvas');
    small.width = small.height = side;
    const img = new ImageData(side, side);
    ink.forEach((v, i) => img.data.set([255 - v, 255 - v, 255 - v, 255], 4 * i));
    small.getContext('2d')!.putImageData(img, 0, 0);
    this.ctx.imageSmoothingEnabled = true;
    this.ctx.imageSmoothingQuality = 'high';
    this.ctx.drawImage(small, 0, 0, PAPER, PAPER);
    this.inked = true;
    this.shown = ink;
    this.onChange();
  }

  /** The sheet as `side` x `side` ink (bright strokes on black). */
  ink(side: number): Uint8Array {
    if (this.shown && this.shown.length === side * side) return this.shown;
    return inkFromPaper(this.ctx.getImageData(0, 0, PAPER, PAPER).data, PAPER, side);
  }

  /** The pointer's position in bitmap pixels (the canvas is shown at any CSS size). */
  private at(e: PointerEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) / r.width) * PAPER, y: ((e.clientY - r.top) / r.height) * PAPER };
  }

  private down(e: PointerEvent): void {
    if (e.button !== 0) return;
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    this.last = this.at(e);
    // A tap leaves a dot, as a pen would.
    this.ctx.fillStyle = INK;
    this.ctx.beginPath();
    this.ctx.arc(this.last.x, this.last.y, STROKE / 2, 0, 2 * Math.PI);
    this.ctx.fill();
    this.inked = true;
    this.shown = undefined;
  }

  private move(e: PointerEvent): void {
    if (!this.last) return;
    const c = this.ctx;
    c.strokeStyle = INK;
    c.lineWidth = STROKE;
    c.lineCap = 'round';
    c.lineJoin = 'round';
    c.beginPath();
    c.moveTo(this.last.x, this.last.y);
    // The events the browser merged since the last frame: a fast stroke stays smooth.
    const merged = e.getCoalescedEvents?.() ?? [];
    for (const p of merged.length > 0 ? merged : [e]) {
      const q = this.at(p);
      c.lineTo(q.x, q.y);
      this.last = q;
    }
    c.stroke();
  }

  private up(): void {
    if (!this.last) return;
    this.last = undefined;
    this.onChange();
  }
}
