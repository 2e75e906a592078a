"""The PyTorch peer of `npm run bench`: a process bench/torch/peer.ts starts per case, answering one
JSON line on stdout for each JSON line it reads on stdin. A diagnostic, never a dependency: it needs
Python 3 with PyTorch and NumPy (Debian: /usr/bin/python3 with python3-torch).

  {"cmd": "hello"}                   -> versions and threads
  {"cmd": "setup", "file": PATH}     -> reads a safetensors file (weights, inputs, and in its metadata
                                        `kind` and a JSON `config`) and builds the case
  {"cmd": "agree", "steps": k}       -> the losses of k steps (before each update) and the case's checks
  {"cmd": "step", "n": n}            -> runs n steps; replies when they are done (Node times the round trip)
  {"cmd": "loop", "warmup": w, "n": n} -> the real training loop with its loader: w untimed iterations, then n timed
  {"cmd": "quit"}

A failure answers {"error": traceback}. Everything else the process prints goes to stderr.
"""
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'scripts', 'reference'))

import make_golden as mg  # noqa: E402  (it sets one thread; the peer sets its own below)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from smkd_step import SmkdStep  # noqa: E402
from vit_step import VitStep  # noqa: E402

CASES = {'vit-step': VitStep, 'smkd-step': SmkdStep}


def main():
    threads = int(sys.argv[sys.argv.index('--threads') + 1]) if '--threads' in sys.argv else 2
    torch.set_num_threads(threads)
    replies, sys.stdout = sys.stdout, sys.stderr
    case = None
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        cmd = msg.get('cmd')
        try:
            if cmd == 'hello':
                reply = {'torch': torch.__version__, 'numpy': np.__version__, 'python': sys.version.split()[0], 'threads': torch.get_num_threads(),
                         'interop_threads': torch.get_num_interop_threads(), 'executable': sys.executable}
            elif cmd == 'setup':
                T, meta = mg.read_safetensors(msg['file'])
                case = CASES[meta['kind']](T, json.loads(meta['config']))
                reply = {'ok': True}
            elif cmd == 'agree':
                reply = case.agree(int(msg.get('steps', 1)))
            elif cmd == 'step':
                t0 = time.perf_counter()
                for _ in range(int(msg['n'])):
                    case.step()
                reply = {'seconds': time.perf_counter() - t0}
            elif cmd == 'loop':
                reply = case.loop(int(msg['warmup']), int(msg['n']))
            elif cmd == 'quit':
                reply = {'ok': True}
            else:
                reply = {'error': f'unknown command {cmd!r}'}
        except Exception:
            reply = {'error': traceback.format_exc()}
        replies.write(json.dumps(reply) + '\n')
        replies.flush()
        if cmd == 'quit':
            break


if __name__ == '__main__':
    main()
