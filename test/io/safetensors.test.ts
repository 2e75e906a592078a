import { suite } from 'uvu';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseSafetensors, readSafetensors, serializeSafetensors, toFloat32, toTypedArray, toWeights, writeSafetensors, type NamedArray } from '../../engine/index.js';
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

/** A safetensors buffer with this JSON header (as given) and `data` bytes after it. */
function withHeader(header: string, data = new Uint8Array(16)): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

test('hostile headers: a null or array header, bad __metadata__, negative or fractional offsets and shapes are errors that say what is wrong, cut short', () => {
  const cases: [string, RegExp][] = [
    ['null', /corrupt header: null where a JSON object of tensors is expected/],
    ['[1,2]', /corrupt header: \[1,2\]/],
    ['{"__metadata__": null}', /corrupt __metadata__: null where a JSON object of strings/],
    ['{"__metadata__": {"a": 1}}', /corrupt __metadata__/],
    ['{"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}', /tensor "w" has a malformed header entry.*non-negative integers/],
    ['{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', /tensor "w" has a malformed header entry/],
    ['{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 6]}}', /malformed header entry/],
    ['{"w": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}', /malformed header entry.*dtype one of F64, F32/],
    ['{"w": null}', /tensor "w" has a malformed header entry null/],
    [`{"${'k'.repeat(5000)}": 1}`, /tensor "k{120}\.\.\. \(5000 characters\)" has a malformed/],
  ];
  for (const [header, want] of cases) {
    try {
      parseSafetensors(withHeader(header), 'bad.safetensors');
    } catch (e) {
      const m = (e as Error).message;
      if (!want.test(m) || !m.startsWith('bad.safetensors: ')) throw new Error(`header ${header.slice(0, 60)}: unexpected message: ${m.slice(0, 300)}`);
      if (m.length > 600) throw new Error(`a ${m.length}-character message`);
      continue;
    }
    throw new Error(`header ${header.slice(0, 60)} was accepted`);
  }
});

test('weights: floating point and finite, else an error naming the tensor (integer relabelling, NaN, Inf, F64 overflow)', () => {
  const file = parseSafetensors(
    serializeSafetensors([
      ['ok', { data: Float32Array.of(1, -2), shape: [2] }],
      ['nan', { data: Float32Array.of(1, NaN, Infinity), shape: [3] }],
      ['int', { data: Int32Array.of(1), shape: [1] }],
      ['big', { data: Float64Array.of(1e300), shape: [1] }],
    ]),
  );
  const t = (k: string) => file.tensors.get(k)!;
  if (toWeights('ok', t('ok')).join() !== '1,-2') throw new Error('finite weights must load');
  for (const [k, want] of [
    ['nan', /"nan" holds 2 non-finite value\(s\) \(NaN or ±Inf\) of 3/],
    ['int', /"int" is stored as I32; a weight must be F32, F16, BF16 or F64/],
    ['big', /"big" holds 1 non-finite/],
  ] as const) {
    try {
      toWeights(k, t(k), 'model.safetensors');
    } catch (e) {
      if (!want.test((e as Error).message) || !(e as Error).message.startsWith('model.safetensors: ')) throw new Error(`unexpected: ${(e as Error).message}`);
      continue;
    }
    throw new Error(`${k} was accepted as weights`);
  }
});

test.run();
