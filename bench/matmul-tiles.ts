// `npx tsx bench/matmul-tiles.ts [--samples 9]`: the matmul at the ViT step's shapes and layouts under
// each tile configuration, samples interleaved so every configuration sees the same machine load,
// median and minimum GPU-side time (pass timestamps where the adapter has them, else wall clock).
// The measurements behind the tile choice in kernels/matmul.ts (bench/NOTES.md) come from this.
import { gpuWait, init, matmul, randn, rt, type Tensor } from '../engine/index.js';
import { matmulTiles, useMatmulTiles } from '../engine/ops/matmul.js';
import { fixedSubgroupSize } from '../engine/tuning.js';
import { GPU_TILES, LAVAPIPE_TILES, type MatmulTiles } from '../kernels/matmul.js';
import { PassTimer } from './gpu-timer.js';

interface Shape {
  name: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

// ViT-Tiny-like step (batch 32 x 65 tokens, dim 192, MLP 768): the forward x·Wᵀ runs as nn after the
// weight copy on software adapters; backward dx is nn, dweight is tn.
const SHAPES: Shape[] = [
  { name: 'fc1 forward [2080, 192] x [192, 768]', M: 2080, N: 768, K: 192, transA: false, transB: false },
  { name: 'fc2 forward [2080, 768] x [768, 192]', M: 2080, N: 192, K: 768, transA: false, transB: false },
  { name: 'fc1 dweight [2080, 768]^T x [2080, 192]', M: 768, N: 192, K: 2080, transA: true, transB: false },
  { name: 'qkv x·Wᵀ read transposed [2080, 192] x [576, 192]^T', M: 2080, N: 576, K: 192, transA: false, transB: true },
];

function configs(): [string, MatmulTiles][] {
  const sg = fixedSubgroupSize();
  const out: [string, MatmulTiles][] = [
    ['plain 8x4 (LAVAPIPE_TILES)', LAVAPIPE_TILES],
    ['staged 64x64, k 16 (GPU_TILES)', GPU_TILES],
  ];
  if (sg) for (const rm of [8, 16, 32, 64]) out.push([`subgroup ${rm}x4, ${sg} lanes`, { tm: rm, tn: sg * 4, tk: 0, rm, rn: 4, sg }]);
  return out;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const samples = Number(argv[argv.indexOf('--samples') + 1] || 9);
  await init();
  const runtime = rt();
  const timer = runtime.gpu.hasTimestamps ? new PassTimer(runtime.device) : undefined;
  const chosen = matmulTiles();
  const list = configs();
  console.log(`adapter tiles today: ${JSON.stringify(chosen)}; ${samples} interleaved samples per configuration; ${timer ? 'GPU-side (pass timestamps)' : 'wall clock'}`);
  for (const s of SHAPES) {
    const a = randn(s.transA ? [s.K, s.M] : [s.M, s.K], 1);
    const b = randn(s.transB ? [s.N, s.K] : [s.K, s.N], 2);
    const times = list.map((): number[] => []);
    const run = (): Tensor => matmul(a, b, { transA: s.transA, transB: s.transB });
    for (let i = 0; i <= samples; i++) {
      for (const [k, [, tiles]] of list.entries()) {
        useMatmulTiles(tiles);
        await runtime.sync();
        timer?.start();
        const t0 = performance.now();
        const y = run();
        await runtime.sync();
        const wall = performance.now() - t0;
        const gpu = timer ? await timer.stop(gpuWait) : wall;
        y.dispose();
        // The first round compiles every pipeline: not timed.
        if (i > 0) times[k].push(gpu);
      }
    }
    useMatmulTiles(undefined);
    const flops = 2 * s.M * s.N * s.K;
    console.log(`\n${s.name}`);
    for (const [k, [name]] of list.entries()) {
      const t = times[k].sort((x, y) => x - y);
      const med = t[t.length >> 1];
      console.log(`  ${name.padEnd(32)} median ${med.toFixed(1).padStart(6)} ms  min ${t[0].toFixed(1).padStart(6)} ms  ${(flops / med / 1e6).toFixed(1).padStart(5)} GFLOP/s`);
    }
    a.dispose();
    b.dispose();
  }
  timer?.dispose();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
