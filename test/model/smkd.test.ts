import { suite } from 'uvu';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as E from '../../engine/index.js';
import { readSafetensors, writeSafetensors } from '../../engine/index.js';
import { HEAD_CONFIGS, vitConfig } from '../../model/configs.js';
import { loadModel, saveModel } from '../../model/index.js';
import { StudentTeacher } from '../../model/smkd.js';
import { gpu } from '../helpers/check.js';

const test = suite('student/teacher and checkpoints');
test.before(gpu);

const make = (seed: number): StudentTeacher => new StudentTeacher({ vit: vitConfig('tiny'), head: HEAD_CONFIGS.tiny, seed });

test('the teacher starts as a copy of the student, has no mask token and follows it by EMA only', async () => {
  const st = make(1);
  const s = await st.student.stateDict();
  const t = await st.teacher.stateDict();
  if (t.has('backbone.masked_embed') || !s.has('backbone.masked_embed')) throw new Error('mask token placement');
  for (const [k, v] of t) if (v.data.some((x, i) => x !== s.get(k)!.data[i])) throw new Error(`teacher ${k} differs from the student at init`);
  if (st.teacher.parameters().some((p) => p.requiresGrad)) throw new Error('teacher parameters require gradients');
  // A forward/backward through the student gives the teacher no gradient; EMA moves it.
  const images = E.randn([2, 3, 32, 32], 5);
  const { tokens } = st.student.backbone.forward(images);
  E.backward(E.sum(st.student.head.forward(tokens)));
  st.student.loadStateDict(new Map([...s].map(([n, v]) => [n, { data: v.data.map((x) => 2 * x), shape: v.shape }])));
  st.updateTeacher(0.75);
  const t2 = await st.teacher.stateDict();
  const k = 'backbone.blocks.0.attn.qkv.weight';
  const want = t.get(k)!.data.map((x) => 0.75 * x + 0.25 * 2 * x);
  if (t2.get(k)!.data.some((x, i) => Math.abs(x - want[i]) > 1e-6 * Math.abs(want[i]) + 1e-9)) throw new Error('EMA did not move the teacher');
  st.dispose();
});

test('safetensors round trip is bit for bit, with PyTorch names and last_layer2 aliases', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'ckpt-'));
  try {
    const a = make(2);
    const file = path.join(dir, 'student.safetensors');
    await saveModel(file, a.student);
    const keys = [...(await readSafetensors(file)).tensors.keys()];
    for (const k of ['backbone.patch_embed.proj.weight', 'backbone.blocks.3.mlp.fc2.bias', 'head.mlp.4.weight', 'head.last_layer.weight_v', 'head.last_layer2.weight_g']) {
      if (!keys.includes(k)) throw new Error(`missing ${k}`);
    }
    const b = make(3);
    await loadModel(file, b.student);
    const sa = await a.student.stateDict();
    const sb = await b.student.stateDict();
    for (const [k, v] of sa) {
      const w = sb.get(k)!.data;
      if (Buffer.compare(Buffer.from(v.data.buffer), Buffer.from(w.buffer)) !== 0) throw new Error(`${k} changed in the round trip`);
    }
    // A file as the reference code writes it: "module." prefixes, a bare backbone loaded non-strictly into backbone+head.
    const bare = path.join(dir, 'backbone.safetensors');
    await writeSafetensors(
      bare,
      [...sa].filter(([k]) => k.startsWith('backbone.')).map(([k, v]) => [`module.${k.slice(9)}`, { data: v.data, shape: v.shape }]),
    );
    const c = make(4);
    const { missing } = await loadModel(bare, c.student, false);
    if (!missing.every((k) => k.startsWith('head.')) || missing.length === 0) throw new Error(`unexpected missing keys ${missing}`);
    const sc = await c.student.stateDict();
    if (sc.get('backbone.pos_embed')!.data.some((x, i) => x !== sa.get('backbone.pos_embed')!.data[i])) throw new Error('bare backbone not loaded');
    // A strict load of a file with wrong shapes names the key and both shapes.
    const wrong = path.join(dir, 'wrong.safetensors');
    await writeSafetensors(
      wrong,
      [...sa].map(([k, v]) => [k, k === 'backbone.norm.weight' ? { data: new Float32Array(65), shape: [65] } : { data: v.data, shape: v.shape }]),
    );
    try {
      await loadModel(wrong, c.student);
      throw new Error('accepted wrong shapes');
    } catch (e) {
      const m = (e as Error).message;
      if (!m.includes('backbone.norm.weight') || !m.includes('[65]') || !m.includes('[64]') || !m.includes('wrong.safetensors')) throw new Error(`unhelpful: ${m}`);
    }
    for (const x of [a, b, c]) x.dispose();
    await readFile(file);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test.run();
