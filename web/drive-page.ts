// Driving the few-shot page as a user would: strokes drawn with the mouse on its canvases, the
// Classify button, and the page's test hook (window.smkdPage) to wait on. Shared by web/screenshot.ts
// and the browser test of the page (test/browser/page.test.ts).
import type { Page } from 'puppeteer-core';
import type { PagePrediction, SmkdPageHook } from './page/test-hook.js';

/** Strokes in the unit square of a pad (x right, y down), one polyline each. */
type Strokes = [number, number][][];

const circle = (cx: number, cy: number, r: number, from = 0): [number, number][] =>
  Array.from({ length: 33 }, (_, i) => {
    const a = from + (i / 32) * 2 * Math.PI;
    return [cx + r * Math.cos(a), cy + r * Math.sin(a)];
  });

/** Three characters unlike each other, and a query: another hand's ring, smaller and off-centre. */
export const CLASSES: { name: string; strokes: Strokes }[] = [
  {
    name: 'ell',
    strokes: [
      [
        [0.32, 0.2],
        [0.33, 0.78],
        [0.7, 0.77],
      ],
    ],
  },
  { name: 'ring', strokes: [circle(0.5, 0.5, 0.28)] },
  {
    name: 'cross',
    strokes: [
      [
        [0.25, 0.25],
        [0.75, 0.75],
      ],
      [
        [0.75, 0.25],
        [0.25, 0.75],
      ],
    ],
  },
];
export const QUERY: Strokes = [circle(0.54, 0.47, 0.24, 1.2)];

/** Draw `strokes` on the canvas `selector` (the i-th match) with the mouse, in small steps. */
export async function draw(page: Page, selector: string, index: number, strokes: Strokes): Promise<void> {
  const pads = await page.$$(selector);
  const box = await pads[index]?.boundingBox();
  if (!box) throw new Error(`no ${selector} #${index} on the page`);
  const at = ([x, y]: [number, number]): [number, number] => [box.x + x * box.width, box.y + y * box.height];
  for (const line of strokes) {
    await page.mouse.move(...at(line[0]));
    await page.mouse.down();
    for (let i = 1; i < line.length; i++) {
      const [x0, y0] = at(line[i - 1]);
      const [x1, y1] = at(line[i]);
      for (let s = 1; s <= 4; s++) await page.mouse.move(x0 + ((x1 - x0) * s) / 4, y0 + ((y1 - y0) * s) / 4);
    }
    await page.mouse.up();
  }
}

/** Wait until the page has made `count` predictions, or throw the page's error. */
export async function waitForPrediction(page: Page, count: number, timeout: number): Promise<PagePrediction> {
  await page.waitForFunction(
    (n: number) => {
      const hook = (globalThis as unknown as { smkdPage: SmkdPageHook }).smkdPage;
      return (hook.lastPrediction?.count ?? 0) >= n || hook.error !== undefined;
    },
    { timeout, polling: 500 },
    count,
  );
  const { prediction, error } = await page.evaluate(() => {
    const hook = (globalThis as unknown as { smkdPage: SmkdPageHook }).smkdPage;
    return { prediction: hook.lastPrediction, error: hook.error };
  });
  if (error !== undefined || !prediction) throw new Error(`the page failed: ${error ?? 'no prediction'}`);
  return prediction;
}

/** Wait for the page's readiness; its adapter's name. */
export async function pageReady(page: Page): Promise<string> {
  const { adapter } = await page.evaluate(() => (globalThis as unknown as { smkdPage: SmkdPageHook }).smkdPage.ready);
  return adapter;
}

/** Draw CLASSES (named) and QUERY, and click Classify; the prediction. */
export async function drawAndClassify(page: Page, timeout: number): Promise<PagePrediction> {
  for (const [i, c] of CLASSES.entries()) {
    await draw(page, '.class-card canvas.pad', i, c.strokes);
    const names = await page.$$('.class-card .class-name');
    await names[i].click({ count: 3 });
    await names[i].type(c.name);
  }
  await draw(page, 'canvas.query-pad', 0, QUERY);
  await page.click('#classify');
  return waitForPrediction(page, 1, timeout);
}
