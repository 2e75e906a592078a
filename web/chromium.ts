// Headless Chromium with WebGPU for the browser tests, the browser bench and the page's screenshot:
// Debian's `chromium` (or CHROMIUM_PATH) driven by puppeteer-core, on a static server on 127.0.0.1
// (WebGPU needs a secure context, and localhost is one). Without a GPU, Chromium's WebGPU runs on
// SwiftShader, a fallback adapter (10-30x slower than lavapipe).
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** The Chromium to drive, or why there is none (the tests skip with this reason). */
export function findChromium(): { path: string } | { missing: string } {
  const given = process.env.CHROMIUM_PATH;
  if (given) return existsSync(given) ? { path: given } : { missing: `CHROMIUM_PATH=${given} does not exist` };
  const found = CANDIDATES.find((p) => existsSync(p));
  return found ? { path: found } : { missing: `no Chromium found (looked for ${CANDIDATES.join(', ')}; set CHROMIUM_PATH, or install Debian's chromium: .ci/run does as root)` };
}

// Flags: WebGPU on (SwiftShader where there is no GPU), and nothing that reaches the network, which a
// closed machine refuses many times a second otherwise.
const FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--disable-gpu-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** `protocolTimeout`: the longest one call into the page may take (ms; a bench case on SwiftShader can take many minutes). */
export async function launchChromium(executablePath: string, protocolTimeout = 900_000): Promise<Browser> {
  const puppeteer = await import('puppeteer-core');
  return puppeteer.default.launch({ executablePath, headless: true, args: FLAGS, protocolTimeout });
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
  '.map': 'application/json',
};

/** Serve `roots` (URL prefix → folder) read-only on 127.0.0.1; resolves with the base URL. */
export async function serveStatic(roots: Record<string, string>, port = 0): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const pathname = decodeURIComponent(url.pathname);
      const prefix = Object.keys(roots)
        .sort((a, b) => b.length - a.length)
        .find((p) => pathname.startsWith(p));
      if (prefix === undefined) return void res.writeHead(404).end('not found');
      const root = path.resolve(roots[prefix]);
      let file = path.resolve(root, `.${pathname.slice(prefix.length - (prefix.endsWith('/') ? 1 : 0))}`);
      if (file !== root && !file.startsWith(root + path.sep)) return void res.writeHead(403).end('forbidden');
      try {
        if ((await stat(file)).isDirectory()) file = path.join(file, 'index.html');
        const body = await readFile(file);
        res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' }).end(body);
      } catch {
        res.writeHead(404).end('not found');
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  return { server, url: `http://127.0.0.1:${actual}` };
}

/** A page with its console relayed to `log` (errors always), opened at `url`. */
export async function openPage(browser: Browser, url: string, log: (line: string) => void = () => undefined): Promise<Page> {
  const page = await browser.newPage();
  page.on('console', (m) => log(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log(`[page error] ${(e as Error).message}`));
  await page.goto(url, { waitUntil: 'load' });
  return page;
}
