// The few DOM helpers the page needs: an element by id (an error naming it when index.html lacks it),
// and elements built in one expression.

/** The element with this id, of the expected kind. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html has no #${id}`);
  return e as T;
}

/** `<tag class=...>children</tag>` with the given properties. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

/** A canvas showing 8-bit RGB pixels one to one (scale it with drawImage, smoothing off, for crisp cells). */
export function rgbCanvas(img: { width: number; height: number; data: Uint8Array }): HTMLCanvasElement {
  const c = h('canvas', { width: img.width, height: img.height });
  const pixels = new ImageData(img.width, img.height);
  for (let i = 0; i < img.width * img.height; i++) pixels.data.set([img.data[3 * i], img.data[3 * i + 1], img.data[3 * i + 2], 255], 4 * i);
  c.getContext('2d')!.putImageData(pixels, 0, 0);
  return c;
}

/** Ink bytes (bright strokes on black) as ink on paper, for thumbnails. */
export function inkCanvas(ink: Uint8Array): HTMLCanvasElement {
  const side = Math.round(Math.sqrt(ink.length));
  const data = new Uint8Array(3 * ink.length);
  ink.forEach((v, i) => data.fill(255 - v, 3 * i, 3 * i + 3));
  return rgbCanvas({ width: side, height: side, data });
}
