// The sheet a character is drawn on, and how a drawing becomes the model's input: the sheet's size and
// stroke width (Omniglot's, relative to its 105-px canvas), and whole-block area averaging to 28 px.
// No DOM here, so that Node tests can check it.

/** Side of a pad's bitmap: 8 bitmap pixels per model pixel at 28 px. */
export const PAPER = 224;
/** Omniglot's strokes are about 5.4 px wide on its 105-px canvas (measured on examples/omniglot-classify). */
export const STROKE = (5.4 / 105) * PAPER;

/**
 * Ink of `side` x `side` from the RGBA pixels of a square sheet (ink dark on white): each output pixel
 * the mean darkness of its block, bright strokes on black as the Omniglot pack stores them.
 */
export function inkFromPaper(rgba: Uint8ClampedArray, paper: number, side: number): Uint8Array {
  if (paper % side !== 0) throw new Error(`inkFromPaper: a ${paper}-px sheet does not split into ${side} x ${side} whole blocks`);
  const block = paper / side;
  const out = new Uint8Array(side * side);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++) {
      let dark = 0;
      for (let by = 0; by < block; by++) {
        const row = (y * block + by) * paper;
        for (let bx = 0; bx < block; bx++) dark += 255 - rgba[4 * (row + x * block + bx)];
      }
      out[y * side + x] = Math.round(dark / (block * block));
    }
  return out;
}
