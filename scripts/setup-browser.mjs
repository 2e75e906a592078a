#!/usr/bin/env node
// Makes sure this machine has a Chromium for the browser tests (test/browser/) and the page's
// screenshot, the way setup-webgpu.mjs makes sure it has a WebGPU driver: plain Node, no dependencies.
// Where none is found on Debian/Ubuntu as root it installs the distribution's `chromium` (WebGPU runs
// there on SwiftShader when there is no GPU); elsewhere it prints what to do, and the browser tests
// skip, naming the reason. CHROMIUM_PATH points at another build. `npm run setup:browser` runs it.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const say = (msg) => console.log(`[setup:browser] ${msg}`);
// The same list web/chromium.ts looks through.
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

function found() {
  if (process.env.CHROMIUM_PATH) return existsSync(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : undefined;
  return CANDIDATES.find((p) => existsSync(p));
}

function osIds() {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    return `${/^ID=(.*)$/m.exec(text)?.[1] ?? ''} ${/^ID_LIKE=(.*)$/m.exec(text)?.[1] ?? ''}`.replace(/"/g, '');
  } catch {
    return '';
  }
}

function main() {
  const have = found();
  if (have) {
    say(`Chromium: ${have}`);
    return 0;
  }
  const debianLike = process.platform === 'linux' && /debian|ubuntu/.test(osIds());
  if (!debianLike || process.getuid?.() !== 0) {
    say(
      debianLike
        ? 'no Chromium found; as root run: apt-get update && apt-get install -y chromium (the browser tests skip until then)'
        : 'no Chromium found: install Chromium or Chrome and set CHROMIUM_PATH (the browser tests skip until then)',
    );
    return 0;
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  say('$ apt-get update -q && apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core');
  execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
  // Ubuntu's `chromium-browser` is a snap wrapper that does not run headless in a container; Debian's `chromium` does.
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium', 'fonts-dejavu-core'], { stdio: 'inherit', env });
  const now = found();
  say(now ? `Chromium: ${now}` : 'chromium installed, but no binary was found where expected: set CHROMIUM_PATH');
  return now ? 0 : 1;
}

process.exit(main());
