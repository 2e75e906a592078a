// PyTorch (CPU) as a peer of the bench, when a Python with torch is on the machine; never a
// dependency. Each case gets its own Python process (bench/torch/peer.py) that answers JSON lines:
// "setup" reads a safetensors file of our weights and inputs, "agree" returns its losses, "step n"
// runs n steps and replies when done, so Node's wall clock around the request times them (the pipe
// round trip is well under a millisecond against steps of 10-300 ms).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { serializeSafetensors, type NamedArray } from '../../engine/index.js';

const PEER_PY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'peer.py');

/** PyTorch's intra-op threads: the machine's two cores, as lavapipe has them. */
export const TORCH_THREADS = 2;

/**
 * The peer's environment. Idle threads must not spin while ours runs between PyTorch's samples:
 * OpenMP's (PyTorch's parallel loops) wait passively, and OpenBLAS's pthreads (its matmuls; Debian's
 * torch links OpenBLAS) sleep at once instead of yielding in a loop for about 0.1 s after each call.
 */
export function peerEnvironment(threads = TORCH_THREADS): Record<string, string> {
  return {
    OMP_WAIT_POLICY: 'PASSIVE',
    OMP_NUM_THREADS: String(threads),
    OPENBLAS_NUM_THREADS: String(threads),
    OPENBLAS_THREAD_TIMEOUT: '4',
    MKL_NUM_THREADS: String(threads),
  };
}

/** A Python that runs the peer, with what it reported. */
export interface TorchEnv {
  python: string;
  executable: string;
  pythonVersion: string;
  torch: string;
  numpy: string;
  threads: number;
  interopThreads: number;
  /** The variables the peer runs with (peerEnvironment). */
  env: Record<string, string>;
  /** Interpreters tried first that could not run it, and why. */
  passedOver: string[];
}

/** The first interpreter that runs the peer (torch imported), or why none did. */
export interface TorchProbe {
  env?: TorchEnv;
  problems: string[];
}

/** SMKD_PYTHON, else python3, else /usr/bin/python3 (a pyenv shim may hide Debian's python3-torch). */
export function pythonCandidates(): string[] {
  return [...new Set([process.env.SMKD_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p))];
}

let probe: Promise<TorchProbe> | undefined;

/** Find PyTorch once per process; never throws (no torch is a note, not an error). */
export function loadTorch(): Promise<TorchProbe> {
  probe ??= findTorch();
  return probe;
}

async function findTorch(): Promise<TorchProbe> {
  const problems: string[] = [];
  for (const python of pythonCandidates()) {
    const peer = new TorchPeer(python);
    try {
      const h = await peer.request<{ torch: string; numpy: string; python: string; threads: number; interop_threads: number; executable: string }>({ cmd: 'hello' });
      return {
        env: {
          python,
          executable: h.executable,
          pythonVersion: h.python,
          torch: h.torch,
          numpy: h.numpy,
          threads: h.threads,
          interopThreads: h.interop_threads,
          env: peerEnvironment(),
          passedOver: [...problems],
        },
        problems: [],
      };
    } catch (e) {
      problems.push(`${python}: ${(e as Error).message.split('\n').filter(Boolean).pop() ?? 'failed'}`);
    } finally {
      await peer.close();
    }
  }
  return { problems: [`no Python that imports torch (tried ${problems.join('; ')}); set SMKD_PYTHON to one`] };
}

/** One peer process; requests are answered in order, one reply line each. */
export class TorchPeer {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  private stderr = '';
  private gone: Error | undefined;
  private closing = false;
  private readonly exited: Promise<void>;

  constructor(python: string, threads = TORCH_THREADS) {
    this.proc = spawn(python, [PEER_PY, '--threads', String(threads)], { env: { ...process.env, ...peerEnvironment(threads) } });
    // A write to a process that has died fails here; its exit below gives the reason.
    this.proc.stdin.on('error', () => undefined);
    createInterface({ input: this.proc.stdout }).on('line', (line) => this.waiting.shift()?.resolve(line));
    // The tail is the reason when the process dies (an import error, a traceback).
    this.proc.stderr.on('data', (d: Buffer) => void (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.exited = new Promise((resolve) => {
      const end = (why: string): void => {
        this.gone ??= new Error(`${why}${this.stderr.trim() ? `:\n${this.stderr.trim()}` : ''}`);
        for (const w of this.waiting.splice(0)) w.reject(this.gone);
        resolve();
      };
      this.proc.on('error', (e) => end(`could not start ${python} (${e.message})`));
      this.proc.on('exit', (code, signal) => end(`the PyTorch peer (${python}) exited with ${signal ?? `code ${code}`}`));
    });
  }

  /** Send one request and wait for its reply; a reply `{ error }` is thrown. */
  request<T>(msg: Record<string, unknown>): Promise<T> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise<string>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.proc.stdin.write(JSON.stringify(msg) + '\n');
    }).then((line) => {
      const reply = JSON.parse(line) as T & { error?: string };
      if (reply.error !== undefined) throw new Error(`PyTorch peer, ${String(msg.cmd)}: ${reply.error}`);
      return reply;
    });
  }

  /** Build the case from tensors and a config (written to a temporary safetensors file, removed after). */
  async setup(kind: string, tensors: Iterable<[string, NamedArray]>, config: unknown): Promise<void> {
    const dir = mkdtempSync(path.join(tmpdir(), 'smkd-torch-'));
    try {
      const file = path.join(dir, 'setup.safetensors');
      writeFileSync(file, serializeSafetensors(tensors, { kind, config: JSON.stringify(config) }));
      await this.request({ cmd: 'setup', file });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** The losses of `steps` steps, each before its update, and the case's own checks. */
  agree(steps: number): Promise<{ losses: Record<string, number>[]; checks?: Record<string, number> }> {
    return this.request({ cmd: 'agree', steps });
  }

  /** Run n steps; resolves when they are done. */
  async steps(n: number): Promise<void> {
    await this.request({ cmd: 'step', n });
  }

  /** Ask the process to end, then wait for it (killed if it does not go within 10 s). */
  async close(): Promise<void> {
    if (!this.gone && !this.closing) this.proc.stdin.end(JSON.stringify({ cmd: 'quit' }) + '\n');
    this.closing = true;
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A peer for `kind` on the probed interpreter, set up from `tensors` and `config`. */
export async function startPeer(env: TorchEnv, kind: string, tensors: Iterable<[string, NamedArray]>, config: unknown): Promise<TorchPeer> {
  const peer = new TorchPeer(env.python, env.threads);
  try {
    await peer.setup(kind, tensors, config);
    return peer;
  } catch (e) {
    await peer.close();
    throw e;
  }
}

/** What PyTorch ran as, in a sentence. */
export function describeTorch(env: TorchEnv): string {
  const vars = Object.entries(env.env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `PyTorch ${env.torch} on CPU (${env.executable}, Python ${env.pythonVersion}, NumPy ${env.numpy}), torch.set_num_threads(${env.threads}) (${env.interopThreads} inter-op), ${vars}`;
}
