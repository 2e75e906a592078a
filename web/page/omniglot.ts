// The test alphabets of the packed Omniglot subset (data/omniglot/, see train/data/omniglot-pack.ts):
// the JSON lists the classes in storage order, the gzipped pixels hold each class's images one after
// another, side x side bytes each, bright strokes on black. Decompressed in the page with
// DecompressionStream, since the file is served as it is stored.
import type { OmniglotPackMeta } from '../../train/data/omniglot-pack.js';
import { fetchBytes } from './pretrained.js';

export const PACK_URL = 'data/omniglot/omniglot-28';

export interface OmniglotCharacter {
  /** `<alphabet>/<character>`, as the pack names it. */
  name: string;
  alphabet: string;
  /** One image per drawer (side x side ink). */
  images: Uint8Array[];
}

export interface OmniglotTest {
  side: number;
  /** The characters of each test alphabet, in the pack's order. */
  alphabets: Map<string, OmniglotCharacter[]>;
}

/** `bytes` gunzipped; bytes that are not gzip pass as they are (a server that already decoded them). */
async function gunzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The pack's test-split characters. */
export async function loadOmniglotTest(base = PACK_URL): Promise<OmniglotTest> {
  const [metaBytes, packed] = await Promise.all([fetchBytes(`${base}.json`), fetchBytes(`${base}.u8.gz`)]);
  const meta = JSON.parse(new TextDecoder().decode(metaBytes)) as OmniglotPackMeta;
  const pixels = await gunzip(packed);
  const side = meta.size;
  const total = meta.classes.reduce((a, c) => a + c.images, 0);
  if (pixels.length !== total * side * side) throw new Error(`${base}.u8.gz: ${pixels.length} bytes, expected ${total} images of ${side}x${side}`);
  const alphabets = new Map<string, OmniglotCharacter[]>();
  let offset = 0;
  for (const c of meta.classes) {
    const images = Array.from({ length: c.images }, (_, i) => pixels.subarray(offset + i * side * side, offset + (i + 1) * side * side));
    offset += c.images * side * side;
    if (meta.splits[c.alphabet] !== 'test') continue;
    const list = alphabets.get(c.alphabet) ?? [];
    list.push({ name: c.name, alphabet: c.alphabet, images });
    alphabets.set(c.alphabet, list);
  }
  return { side, alphabets };
}
