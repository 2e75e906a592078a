// safetensors read and write (the format of Hugging Face's `safetensors`): an 8-byte little-endian
// header length, a JSON header of {name: {dtype, shape, data_offsets}} plus optional string
// metadata, then the raw little-endian tensor bytes. Host-side only: tensors move to the GPU elsewhere.
// Bytes in, bytes out, so a page can use it; reading and writing files is engine/node/files.ts.

export type SafeDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'U16' | 'U32' | 'U64' | 'BOOL';

const BYTES: Record<SafeDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, U16: 2, U32: 4, U64: 8, BOOL: 1 };

export type SafeArray = Float64Array | Float32Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array | Uint32Array | BigUint64Array;

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  /** The raw little-endian bytes, exactly as stored. */
  bytes: Uint8Array;
}

export interface SafeFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** Parse a safetensors buffer; `what` names the source in error messages. */
export function parseSafetensors(buf: Uint8Array, what = 'safetensors data'): SafeFile {
  if (buf.byteLength < 8) throw new Error(`${what}: not a safetensors file (${buf.byteLength} bytes)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > buf.byteLength - 8 || headerLen > 100_000_000) throw new Error(`${what}: corrupt header length ${headerLen}`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new Error(`${what}: corrupt JSON header (${(e as Error).message})`);
  }
  if (!isRecord(header)) throw new Error(`${what}: corrupt header: ${brief(header)} where a JSON object of tensors is expected`);
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isRecord(entry) || Object.values(entry).some((v) => typeof v !== 'string'))
        throw new Error(`${what}: corrupt __metadata__: ${brief(entry)} where a JSON object of strings is expected`);
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = (isRecord(entry) ? entry : {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const naturals = (v: unknown, n?: number): v is number[] =>
      Array.isArray(v) && (n === undefined || v.length === n) && v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
    if (typeof e.dtype !== 'string' || !(e.dtype in BYTES) || !naturals(e.shape) || !naturals(e.data_offsets, 2)) {
      throw new Error(
        `${what}: tensor "${brief(name)}" has a malformed header entry ${brief(entry)} (dtype one of ${Object.keys(BYTES).join(', ')}, shape and data_offsets non-negative integers)`,
      );
    }
    const dtype = e.dtype as SafeDType;
    const [begin, end] = e.data_offsets;
    const count = e.shape.reduce((a, d) => a * d, 1);
    if (end - begin !== count * BYTES[dtype] || dataStart + end > buf.byteLength) {
      throw new Error(`${what}: tensor "${brief(name)}" (${dtype}[${e.shape.join(', ')}]) has offsets [${begin}, ${end}] that do not match its size or the file`);
    }
    tensors.set(name, { dtype, shape: e.shape, bytes: buf.subarray(dataStart + begin, dataStart + end) });
  }
  return { tensors, metadata };
}

/** Whether a stored dtype is floating point (what a weight must be). */
export function isFloat(dtype: SafeDType): boolean {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16' || dtype === 'F64';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A header value for a message, cut short (a hostile header may hold megabytes). */
function brief(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return s.length > 120 ? `${s.slice(0, 120)}... (${s.length} characters)` : s;
}

/**
 * The values of a stored tensor that is a model's weight: floating point (F32, F16, BF16, F64) and
 * finite, else an error naming it. Weights relabelled as integers, or a run that diverged to NaN, would
 * otherwise load silently and give chance-level features.
 */
export function toWeights(name: string, t: SafeTensor, what = 'weights'): Float32Array {
  if (!isFloat(t.dtype)) throw new Error(`${what}: tensor "${name}" is stored as ${t.dtype}; a weight must be F32, F16, BF16 or F64`);
  const a = toFloat32(t);
  let bad = 0;
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) bad++;
  if (bad > 0) throw new Error(`${what}: tensor "${name}" holds ${bad} non-finite value(s) (NaN or ±Inf) of ${a.length}: the file is damaged or its run diverged`);
  return a;
}

/** The values of a stored tensor as a typed array of its dtype (F16/BF16 widened to Float32Array). */
export function toTypedArray(t: SafeTensor): SafeArray {
  // Copy to an aligned buffer: tensors inside a file need not be aligned to their element size.
  const b = t.bytes.slice().buffer;
  switch (t.dtype) {
    case 'F64':
      return new Float64Array(b);
    case 'F32':
      return new Float32Array(b);
    case 'I64':
      return new BigInt64Array(b);
    case 'U64':
      return new BigUint64Array(b);
    case 'I32':
      return new Int32Array(b);
    case 'U32':
      return new Uint32Array(b);
    case 'I16':
      return new Int16Array(b);
    case 'U16':
      return new Uint16Array(b);
    case 'I8':
      return new Int8Array(b);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(b);
    case 'F16':
      return halfToFloat(new Uint16Array(b), false);
    case 'BF16':
      return halfToFloat(new Uint16Array(b), true);
  }
}

/** Any numeric tensor as float32 values (integers and float64 converted). */
export function toFloat32(t: SafeTensor): Float32Array {
  const a = toTypedArray(t);
  if (a instanceof Float32Array) return a;
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
  return out;
}

function halfToFloat(h: Uint16Array, bf16: boolean): Float32Array {
  const out = new Float32Array(h.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) {
    const x = h[i];
    if (bf16) {
      u[i] = x << 16;
      continue;
    }
    const sign = (x & 0x8000) << 16;
    const exp = (x >> 10) & 0x1f;
    const frac = x & 0x3ff;
    if (exp === 0) out[i] = (sign ? -1 : 1) * frac * 2 ** -24;
    else if (exp === 31) u[i] = sign | 0x7f800000 | (frac << 13);
    else u[i] = sign | ((exp + 112) << 23) | (frac << 13);
  }
  return out;
}

function dtypeOf(a: SafeArray): SafeDType {
  if (a instanceof Float64Array) return 'F64';
  if (a instanceof Float32Array) return 'F32';
  if (a instanceof BigInt64Array) return 'I64';
  if (a instanceof BigUint64Array) return 'U64';
  if (a instanceof Int32Array) return 'I32';
  if (a instanceof Uint32Array) return 'U32';
  if (a instanceof Int16Array) return 'I16';
  if (a instanceof Uint16Array) return 'U16';
  if (a instanceof Int8Array) return 'I8';
  return 'U8';
}

export interface NamedArray {
  data: SafeArray;
  shape: readonly number[];
  /** Override the stored dtype (e.g. 'BOOL' for a Uint8Array mask). */
  dtype?: SafeDType;
}

/** Serialise tensors (in the given order) and string metadata to safetensors bytes. */
export function serializeSafetensors(tensors: Iterable<[string, NamedArray]>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const dtype = t.dtype ?? dtypeOf(t.data);
    const count = t.shape.reduce((a, d) => a * d, 1);
    if (count !== t.data.length) throw new Error(`safetensors: "${name}" has ${t.data.length} values for shape [${t.shape}]`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  const head = new Uint8Array(json.byteLength + ((8 - ((8 + json.byteLength) % 8)) % 8)).fill(0x20);
  head.set(json);
  const out = new Uint8Array(8 + head.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.byteLength), true);
  out.set(head, 8);
  let at = 8 + head.byteLength;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
