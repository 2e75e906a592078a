// `npm run web`: build the few-shot page (web/build.ts) and serve web/dist on 127.0.0.1 (a secure
// context, as WebGPU needs) until Ctrl-C.
//   npm run web [-- --port 8080]
import path from 'node:path';
import { parseArgs } from 'node:util';
import { serveStatic } from './chromium.js';
import { buildPage } from './build.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${values.port}: expected a port number (0-65535; 0 picks a free one)`);

const built = await buildPage();
console.log(`built ${path.relative(process.cwd(), built.dir)} (main.js ${(built.bundleBytes / 1024).toFixed(0)} KiB) in ${(built.ms / 1000).toFixed(1)} s`);
const { server, url } = await serveStatic({ '/': built.dir }, port);
console.log(`the few-shot page: ${url}/  (a browser with WebGPU: recent Chrome, Edge or Safari; Ctrl-C stops)`);
process.on('SIGINT', () => server.close(() => process.exit(0)));
