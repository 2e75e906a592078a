// Proof that the few-shot page works, end to end in headless Chromium: build and serve it, wait until
// the page is ready (window.smkdPage.ready), draw three classes and a query with the mouse (pointer
// events on the canvases, as a user's strokes), click Classify, wait for the prediction, save a
// screenshot. With --learn, then also fine-tune ("learn these") and wait for the re-classification.
//   npx tsx web/screenshot.ts [--out docs/web-page.png] [--learn] [--timeout 900]
// Without a GPU, Chromium runs WebGPU on SwiftShader: the first classification compiles every shader on
// the CPU and takes tens of seconds.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildPage } from './build.js';
import { findChromium, launchChromium, openPage, serveStatic } from './chromium.js';
import { drawAndClassify, pageReady, waitForPrediction } from './drive-page.js';
import type { PagePrediction, SmkdPageHook } from './page/test-hook.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'docs/web-page.png' },
    learn: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '900' },
  },
});
const timeout = Number(values.timeout) * 1000;

const show = (p: PagePrediction): string => `${p.predicted} (${p.scores.map((s) => `${s.name} ${s.score.toFixed(3)}`).join(', ')}) in ${(p.ms / 1000).toFixed(1)} s`;

const chromium = findChromium();
if ('missing' in chromium) throw new Error(chromium.missing);
const built = await buildPage();
const { server, url } = await serveStatic({ '/': built.dir });
const browser = await launchChromium(chromium.path);
try {
  const page = await openPage(browser, `${url}/`, (line) => console.log(line));
  await page.setViewport({ width: 1280, height: 1000 });
  const t0 = performance.now();
  const adapter = await pageReady(page);
  console.log(`ready on ${adapter} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const t1 = performance.now();
  const first = await drawAndClassify(page, timeout);
  console.log(`first classification: ${show(first)}; ${((performance.now() - t1) / 1000).toFixed(1)} s from the first stroke`);

  if (values.learn) {
    const t2 = performance.now();
    await page.click('#learn');
    const again = await waitForPrediction(page, 2, timeout);
    const learned = await page.evaluate(() => (globalThis as unknown as { smkdPage: SmkdPageHook }).smkdPage.lastLearn);
    console.log(
      `learned in ${((learned?.ms ?? 0) / 1000).toFixed(1)} s (loss ${learned?.loss.toFixed(3)}); then ${show(again)}; ${((performance.now() - t2) / 1000).toFixed(1)} s from the click`,
    );
  }

  await mkdir(path.dirname(path.resolve(values.out)), { recursive: true });
  await page.screenshot({ path: values.out as `${string}.png`, fullPage: true });
  console.log(`saved ${values.out}`);
} finally {
  await browser.close();
  server.close();
}
