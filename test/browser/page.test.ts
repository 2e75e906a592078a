// The few-shot page (web/page, `npm run web`) end to end in headless Chromium: built and served as
// `npm run web` does, three classes and a query drawn with the mouse, a prediction, "learn these", and a
// screenshot that is not blank. Skipped, with the reason, where no Chromium is installed.
import type { Server } from 'node:http';
import type { Browser, Page } from 'puppeteer-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildPage } from '../../web/build.js';
import { findChromium, launchChromium, openPage, serveStatic } from '../../web/chromium.js';
import { drawAndClassify, pageReady, waitForPrediction } from '../../web/drive-page.js';
import type { SmkdPageHook } from '../../web/page/test-hook.js';
import { skipUnless } from '../helpers/skip.js';

const chromium = findChromium();
const test = suite('few-shot page');
const inBrowser = skipUnless(test, 'path' in chromium, 'missing' in chromium ? chromium.missing : '');
const TIMEOUT = 600_000;

let browser: Browser | undefined;
let server: Server | undefined;
let page: Page | undefined;
const pageErrors: string[] = [];

test.before(async () => {
  if (!('path' in chromium)) return;
  const built = await buildPage();
  const served = await serveStatic({ '/': built.dir });
  server = served.server;
  browser = await launchChromium(chromium.path);
  page = await openPage(browser, `${served.url}/`, (line) => {
    if (/error/i.test(line) && !/404/.test(line)) pageErrors.push(line);
  });
  await page.setViewport({ width: 1280, height: 1000 });
});

test.after(async () => {
  await browser?.close();
  server?.close();
});

inBrowser('the page loads the shipped model and names its adapter', async () => {
  const adapter = await pageReady(page!);
  console.log(`  page ready on ${adapter}`);
  assert.ok(adapter.length > 0);
  const footer = await page!.evaluate(() => (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText);
  assert.match(footer, adapter);
});

inBrowser('drawn classes and a drawn query: the right class, with scores for all, best first', async () => {
  const p = await drawAndClassify(page!, TIMEOUT);
  console.log(`  ${p.predicted}: ${p.scores.map((s) => `${s.name} ${s.score.toFixed(3)}`).join(', ')} (${(p.ms / 1000).toFixed(1)} s)`);
  assert.is(p.predicted, 'ring');
  assert.equal(p.scores.map((s) => s.name).sort(), ['cross', 'ell', 'ring']);
  for (let i = 1; i < p.scores.length; i++) assert.ok(p.scores[i - 1].score >= p.scores[i].score, 'scores best first');
  assert.equal(pageErrors, []);
});

inBrowser('"learn these" fine-tunes, then classifies again', async () => {
  await page!.click('#learn');
  const again = await waitForPrediction(page!, 2, TIMEOUT);
  const learned = await page!.evaluate(() => (globalThis as unknown as { smkdPage: SmkdPageHook }).smkdPage.lastLearn);
  console.log(`  learned in ${((learned?.ms ?? 0) / 1000).toFixed(1)} s, loss ${learned?.loss.toFixed(3)}; then ${again.predicted} ${again.scores[0].score.toFixed(3)}`);
  assert.ok(learned && Number.isFinite(learned.loss));
  assert.is(again.predicted, 'ring');
});

inBrowser('the screenshot of the result is not blank', async () => {
  const png = await page!.screenshot({ fullPage: true });
  const { default: sharp } = await import('sharp');
  const stats = await sharp(Buffer.from(png)).stats();
  const spread = Math.max(...stats.channels.slice(0, 3).map((c) => c.stdev));
  const { width, height } = await sharp(Buffer.from(png)).metadata();
  console.log(`  screenshot ${width}x${height}, pixel standard deviation ${spread.toFixed(1)}`);
  // A blank page is one colour (deviation 0); the drawn page with its heat maps is far from it.
  assert.ok(spread > 20, `pixel standard deviation ${spread}`);
});

test.run();
