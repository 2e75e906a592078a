#!/usr/bin/env node
// Makes sure this machine has a WebGPU adapter for Dawn. Plain Node with no dependencies, so it can run
// before `npm ci`. Where no adapter is found on Debian/Ubuntu as root, it installs the software Vulkan
// driver (lavapipe); elsewhere it prints the command to run. `npm run setup` runs it on its own.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const say = (msg) => console.log(`[setup] ${msg}`);

/** Ask Dawn for an adapter in a child process (a driver crash must not take this script down). */
function probeAdapter() {
  const require = createRequire(path.join(root, 'package.json'));
  try {
    require.resolve('webgpu');
  } catch {
    return { known: false };
  }
  const code = `
    import { create, globals } from 'webgpu';
    Object.assign(globalThis, globals);
    const gpu = create([]);
    const a = await gpu.requestAdapter();
    console.log(JSON.stringify(a ? { ok: true, name: [a.info.vendor, a.info.architecture, a.info.description].filter(Boolean).join(' ') } : { ok: false }));
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    const res = JSON.parse(line);
    return { known: true, ok: res.ok, name: res.name };
  } catch {
    return { known: true, ok: false, error: (r.stderr ?? '').trim().split('\n').slice(-3).join(' ') };
  }
}

function osRelease() {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    return Object.fromEntries(
      text
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => {
          const i = l.indexOf('=');
          return [l.slice(0, i), l.slice(i + 1).replace(/^"|"$/g, '')];
        }),
    );
  } catch {
    return {};
  }
}

/** Is a Vulkan loader plus an ICD (GPU driver or lavapipe) present? */
function hasVulkanDriver() {
  const loader = ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib/aarch64-linux-gnu/libvulkan.so.1', '/usr/lib64/libvulkan.so.1', '/usr/lib/libvulkan.so.1'].some(existsSync);
  const icdDirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'];
  const icd = icdDirs.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
  return loader && icd;
}

function installedVersion(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

function run(cmd, args) {
  say(`$ ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/**
 * Debian bookworm's Mesa 22.3 lavapipe is refused by Dawn's Vulkan backend, so the driver comes from
 * bookworm-backports. The backports source reuses the mirror this machine already uses for Debian.
 */
function ensureBackports(codename) {
  const suite = `${codename}-backports`;
  const dir = '/etc/apt/sources.list.d';
  const files = existsSync(dir) ? readdirSync(dir).map((f) => path.join(dir, f)) : [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  const texts = files.map((f) => readFileSync(f, 'utf8'));
  if (texts.some((t) => new RegExp(`\\b${suite}\\b`).test(t))) return;
  let uri;
  for (const t of texts) {
    const deb822 = t.split(/\n\s*\n/).find((stanza) => new RegExp(`^Suites:.*\\b${codename}\\b`, 'm').test(stanza) && /^Types:.*\bdeb\b/m.test(stanza) && !/security/.test(stanza));
    if (deb822) uri = /^URIs:\s*(\S+)/m.exec(deb822)?.[1];
    const oneLine = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${codename}\\s`, 'm').exec(t);
    uri ??= oneLine?.[1];
    if (uri) break;
  }
  if (!uri) throw new Error(`could not find this machine's Debian mirror to add ${suite}; add ${suite} to the apt sources by hand`);
  writeFileSync(path.join(dir, 'smkd-backports.list'), `deb ${uri} ${suite} main\n`);
  say(`added ${suite} from ${uri}`);
}

function installDriver(os) {
  const isRoot = process.getuid?.() === 0;
  const debianLike = /debian|ubuntu/.test(`${os.ID} ${os.ID_LIKE ?? ''}`);
  const bookworm = os.ID === 'debian' && os.VERSION_CODENAME === 'bookworm';
  const target = bookworm ? ['-t', 'bookworm-backports'] : [];
  const pkgs = ['libvulkan1', 'mesa-vulkan-drivers'];
  const command = `${bookworm ? '(add bookworm-backports to the apt sources) && ' : ''}apt-get update && apt-get install -y ${target.join(' ')} ${pkgs.join(' ')}`;
  if (process.platform !== 'linux' || !debianLike) {
    say(
      `no WebGPU adapter found. Install your GPU's Vulkan (Linux), Metal (macOS) or D3D12 (Windows) driver; on Linux without a GPU install Mesa's lavapipe (Vulkan) 23 or newer.`,
    );
    return false;
  }
  if (!isRoot) {
    say(`no WebGPU adapter found. As root, run: ${command}`);
    return false;
  }
  if (bookworm) ensureBackports('bookworm');
  run('apt-get', ['update', '-q']);
  run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...target, ...pkgs]);
  return true;
}

function main() {
  const os = osRelease();
  let probe = probeAdapter();
  if (probe.known && probe.ok) {
    say(`WebGPU adapter: ${probe.name}`);
    return 0;
  }
  const mesa = installedVersion('mesa-vulkan-drivers');
  const staleMesa = /^2[0-2]\./.test(mesa);
  if (!probe.known && hasVulkanDriver() && !staleMesa) {
    say('Vulkan driver present (the adapter is checked once `npm ci` has installed Dawn).');
    return 0;
  }
  if (staleMesa) say(`Mesa ${mesa} is too old for Dawn (it needs 23 or newer).`);
  if (!installDriver(os)) return 1;
  probe = probeAdapter();
  if (probe.known && !probe.ok) {
    say(`still no WebGPU adapter after installing the driver. ${probe.error ?? ''}`);
    return 1;
  }
  say(probe.known ? `WebGPU adapter: ${probe.name}` : 'Vulkan driver installed.');
  return 0;
}

process.exit(main());
