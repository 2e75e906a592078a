import { suite } from 'uvu';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseSafetensors, readSafetensors, serializeSafetensors, toFloat32, toTypedArray, writeSafetensors, type NamedArray } from '../../engine/io/safetensors.js';
import { GOLDEN_DIR as GOLDEN } from '../helpers/golden.js';
import { skipUnless } from '../helpers/skip.js';

const test = suite('safetensors');

skipUnless(
  test,
  existsSync(GOLDEN),
  `no golden folder ${GOLDEN}; set GOLDEN_DIR`,
)('every golden file survives a write/read round trip bit for bit', async () => {
  const files = (await readdir(GOLDEN)).filter((f) => f.endsWith('.safetensors'));
  if (files.length === 0) throw new Error(`no golden files in ${GOLDEN}`);
  const dir = await mkdtemp(path.join(tmpdir(), 'st-'));
  try {
    for (const f of files) {
      const src = await readSafetensors(path.join(GOLDEN, f));
      const out = path.join(dir, f);
      await writeSafetensors(
        out,
        [...src.tensors].map(([k, t]): [string, NamedArray] => [k, { data: toTypedArray(t), shape: t.shape, dtype: t.dtype }]),
        src.metadata,
      );
      const back = await readSafetensors(out);
      if (back.tensors.size !== src.tensors.size) throw new Error(`${f}: ${back.tensors.size} tensors back of ${src.tensors.size}`);
      if (JSON.stringify(back.metadata) !== JSON.stringify(src.metadata)) throw new Error(`${f}: metadata changed`);
      for (const [k, t] of src.tensors) {
        const b = back.tensors.get(k)!;
        if (b.dtype !== t.dtype || b.shape.join() !== t.shape.join()) throw new Error(`${f}/${k}: dtype or shape changed`);
        if (Buffer.compare(Buffer.from(b.bytes), Buffer.from(t.bytes)) !== 0) throw new Error(`${f}/${k}: bytes changed`);
      }
    }
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('data starts 8-byte aligned and values decode by dtype', () => {
  const bytes = serializeSafetensors(
    [
      ['a', { data: Float32Array.of(1.5, -2), shape: [2] }],
      ['b', { data: BigInt64Array.of(7n), shape: [] }],
      ['m', { data: Uint8Array.of(1, 0, 1), shape: [3], dtype: 'BOOL' }],
      ['h', { data: Uint16Array.of(0x3c00, 0xc000, 0x0001), shape: [3], dtype: 'F16' }],
    ],
    { note: 'x' },
  );
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  if ((8 + headerLen) % 8 !== 0) throw new Error('data not aligned');
  const f = parseSafetensors(bytes);
  if (toFloat32(f.tensors.get('a')!).join() !== '1.5,-2') throw new Error('F32 decode');
  if (toTypedArray(f.tensors.get('b')!)[0] !== 7n) throw new Error('I64 decode');
  const h = toFloat32(f.tensors.get('h')!);
  if (h[0] !== 1 || h[1] !== -2 || Math.abs(h[2] - 2 ** -24) > 1e-12) throw new Error(`F16 decode ${h}`);
  if (f.metadata.note !== 'x') throw new Error('metadata');
});

test('corrupt files give errors naming the file', () => {
  const good = serializeSafetensors([['a', { data: Float32Array.of(1, 2, 3), shape: [3] }]]);
  const cut = good.subarray(0, good.byteLength - 4);
  for (const [bytes, part] of [
    [cut, 'offsets'],
    [good.subarray(0, 5), 'not a safetensors'],
    [Uint8Array.of(255, 255, 255, 255, 0, 0, 0, 0, 1), 'header'],
  ] as const) {
    try {
      parseSafetensors(bytes, 'model.safetensors');
    } catch (e) {
      const m = (e as Error).message;
      if (!m.includes('model.safetensors') || !m.includes(part)) throw new Error(`unhelpful: ${m}`);
      continue;
    }
    throw new Error('corrupt data was accepted');
  }
});

test.run();
