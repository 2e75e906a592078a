// `smkd eval` and the backbone loader: a ViT from a checkpoint alone (configuration from the weights'
// shapes, heads from the run config or the file's metadata), the golden evaluation features through
// it, and the command end to end on a tiny run, its JSON equal to the evaluation computed directly.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HostTensor } from '../../engine/nn/module.js';
import { saveModel } from '../../model/index.js';
import { vitConfig } from '../../model/configs.js';
import { StudentTeacher } from '../../model/smkd.js';
import { VisionTransformer } from '../../model/vit.js';
import { parseSafetensors, serializeSafetensors, toTypedArray, type NamedArray } from '../../engine/index.js';
import { backboneTensors, inferVitConfig, loadBackbone, resolveCheckpoint, seenClassesWarning } from '../../train/backbone-file.js';
import { program } from '../../train/cli.js';
import { preset, validateConfig } from '../../train/config.js';
import { episodesReport, type EvalReport } from '../../train/evaluate.js';
import { batchFeatures, capPerClass, defaultShiftRadius, extractFeatures, shiftGrid } from '../../train/features.js';
import { openSplits } from '../../train/sources.js';
import { saveCheckpoint } from '../../train/checkpoint.js';
import { modelsFor } from '../../train/trainer.js';
import { AdamW } from '../../engine/index.js';
import { close, gpu, rejects } from '../helpers/check.js';
import { GOLDEN_DIR, Golden, needsGolden } from '../helpers/golden.js';

const test = suite('eval cli');
test.before(gpu);

const shapes = (entries: [string, number[]][]): Map<string, HostTensor> => new Map(entries.map(([k, s]) => [k, { data: new Float32Array(0), shape: s }]));

test('ViT configuration from the weights: sizes from shapes, heads given, from metadata, or by convention', () => {
  const vit = (D: number, p: number, g: number, depth: number, hidden: number) =>
    shapes([
      ['patch_embed.proj.weight', [D, 3, p, p]],
      ['pos_embed', [1, 1 + g * g, D]],
      ...Array.from({ length: depth }, (_, l): [string, number[]] => [`blocks.${l}.mlp.fc1.weight`, [hidden, D]]),
    ]);
  const small = inferVitConfig(vit(384, 16, 14, 12, 1536));
  assert.equal({ ...small.config }, { ...vitConfig('vit_small'), dropPath: 0, maskToken: false });
  assert.is(small.headsFrom, 'convention');
  const tiny = inferVitConfig(vit(64, 4, 8, 4, 256));
  assert.is(tiny.config.numHeads, 2, 'the presets have 32-wide heads');
  assert.is(tiny.config.imgSize, 32);
  const given = inferVitConfig(vit(64, 4, 8, 4, 256), { vit: JSON.stringify({ num_heads: 4 }) }, 8);
  assert.is(given.config.numHeads, 8);
  assert.is(given.headsFrom, 'given');
  const meta = inferVitConfig(vit(36, 4, 6, 2, 144), { vit: JSON.stringify({ num_heads: 3, ln_eps: 1e-5 }) });
  assert.is(meta.config.numHeads, 3);
  assert.is(meta.config.lnEps, 1e-5);
  assert.is(meta.headsFrom, 'metadata');
  assert.throws(() => inferVitConfig(shapes([['pos_embed', [1, 65, 64]]])), /patch_embed\.proj\.weight/);
  assert.throws(() => inferVitConfig(vit(64, 4, 8, 0, 256)), /blocks/);
});

test('a backbone file with NaN weights, or weights relabelled as integers, is refused on loading, naming the file and the tensor', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'evalcli-'));
  const vit = new VisionTransformer(vitConfig('tiny', { depth: 1 })).build({ seed: 2, requiresGrad: false });
  const good = path.join(dir, 'good.safetensors');
  await saveModel(good, vit);
  vit.dispose();
  const f = parseSafetensors(new Uint8Array(await readFile(good)));
  const tensors = [...f.tensors].map(([k, t]) => [k, { data: toTypedArray(t) as Float32Array, shape: t.shape }] as [string, { data: Float32Array; shape: number[] }]);
  const nan = tensors.map(([k, t]): [string, NamedArray] => [k, k === 'pos_embed' ? { data: t.data.map((x, i) => (i === 3 ? NaN : x)), shape: t.shape } : t]);
  await writeFile(path.join(dir, 'nan.safetensors'), serializeSafetensors(nan, f.metadata));
  await rejects(loadBackbone(path.join(dir, 'nan.safetensors')), /nan\.safetensors: tensor "pos_embed" holds 1 non-finite value/);
  const ints = tensors.map(([k, t]): [string, NamedArray] => [k, k === 'cls_token' ? { data: new Int32Array(t.data.buffer.slice(0)), shape: t.shape } : t]);
  await writeFile(path.join(dir, 'int.safetensors'), serializeSafetensors(ints, f.metadata));
  await rejects(loadBackbone(path.join(dir, 'int.safetensors')), /int\.safetensors: weights: tensor "cls_token" is stored as I32/);
  await writeFile(path.join(dir, 'pre.safetensors'), serializeSafetensors(tensors, { ...f.metadata, preprocessing: '{"normalize": null}' }));
  await rejects(loadBackbone(path.join(dir, 'pre.safetensors')), /pre\.safetensors: its "preprocessing" metadata is damaged \(\{"normalize": null\}\)/);
  await rm(dir, { recursive: true, force: true });
});

test('backbone tensors: bare timm names, backbone.* of a network, the teacher half of a whole-training file', () => {
  const file = (keys: string[]) => parseSafetensors(serializeSafetensors(keys.map((k, i) => [k, { data: Float32Array.of(i), shape: [1] }])));
  const names = (keys: string[], network?: 'teacher' | 'student') => [...backboneTensors(file(keys), network).entries()].map(([k, v]) => `${k}=${v.data[0]}`).sort();
  assert.equal(names(['cls_token', 'blocks.0.norm1.weight', 'head.weight']), ['blocks.0.norm1.weight=1', 'cls_token=0', 'head.weight=2']);
  assert.equal(names(['module.backbone.cls_token', 'module.head.mlp.0.weight']), ['cls_token=0']);
  const whole = ['student.module.backbone.cls_token', 'student.module.backbone.masked_embed', 'teacher.module.backbone.cls_token', 'teacher.module.head.last_layer.weight_g'];
  assert.equal(names(whole), ['cls_token=2']);
  assert.equal(names(whole, 'student'), ['cls_token=0', 'masked_embed=1']);
});

needsGolden(
  test,
  'vit_forward.safetensors',
  'vit_forward_h3d2.safetensors',
)('golden vit_forward files through loadBackbone: evaluation features of every kind match PyTorch', async () => {
  for (const name of ['vit_forward.safetensors', 'vit_forward_h3d2.safetensors']) {
    const g = await Golden.load(name);
    const m = g.meta<{ img_size: number; num_heads: number; depth: number }>('vit');
    const b = await loadBackbone(path.join(GOLDEN_DIR, name));
    try {
      assert.is(b.config.imgSize, m.img_size);
      assert.is(b.config.numHeads, m.num_heads);
      assert.is(b.config.depth, m.depth);
      assert.is(b.headsFrom, 'metadata');
      assert.ok(b.ignored.includes('masked_embed') && b.ignored.some((k) => k.startsWith('out.')), 'inputs, outputs and the mask token are not weights of the inference backbone');
      for (const set of ['global', 'local']) {
        const [n, , size] = g.shape(`in.${set}.images`);
        const want = g.f32(`out.${set}.eval_features`);
        const D = want.length / n / 2;
        const concat = await batchFeatures(b.backbone, g.f32(`in.${set}.images`), n, size, ['cls', 'weighted']);
        close(concat.data, want, 2e-5, `${name} ${set} concat`);
        const cls = await batchFeatures(b.backbone, g.f32(`in.${set}.images`), n, size, ['cls']);
        close(
          cls.data,
          Float32Array.from({ length: n * D }, (_, i) => want[Math.floor(i / D) * 2 * D + (i % D)]),
          2e-5,
          `${name} ${set} cls`,
        );
      }
    } finally {
      b.backbone.dispose();
    }
  }
});

/** A run directory as the trainer leaves it: config.json, latest.json, checkpoints/it-N/{teacher,student}.safetensors. */
async function tinyRun(dir: string): Promise<{ run: string; models: StudentTeacher }> {
  const base = preset('tiny', 2);
  // 4 heads of 16: not what the convention would guess for D = 64, so the run's config must be read.
  const cfg = validateConfig({ ...base, out: dir, model: { ...base.model, depth: 2, numHeads: 4 } });
  const models = new StudentTeacher({ vit: vitConfig('tiny', { depth: 2, numHeads: 4 }), head: { ...cfg.head }, seed: 5 });
  const ckpt = path.join(dir, 'checkpoints', 'it-0000003');
  await mkdir(ckpt, { recursive: true });
  await saveModel(path.join(ckpt, 'teacher.safetensors'), models.teacher);
  await saveModel(path.join(ckpt, 'student.safetensors'), models.student);
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(cfg));
  await writeFile(path.join(dir, 'latest.json'), JSON.stringify({ checkpoint: 'checkpoints/it-0000003', iteration: 3, phase: 2 }));
  return { run: dir, models };
}

test('checkpoints: run directory, checkpoint directory and file resolve to the same weights and run config', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'evalcli-'));
  const { run, models } = await tinyRun(dir);
  try {
    const file = path.join(run, 'checkpoints', 'it-0000003', 'teacher.safetensors');
    const cfg = path.join(run, 'config.json');
    assert.equal(await resolveCheckpoint(run), { file, runConfig: cfg });
    assert.equal(await resolveCheckpoint(path.dirname(file)), { file, runConfig: cfg });
    assert.equal(await resolveCheckpoint(file), { file, runConfig: cfg });
    assert.equal(await resolveCheckpoint(run, 'student'), { file: file.replace('teacher', 'student'), runConfig: cfg });
    await rejects(resolveCheckpoint(path.join(dir, 'nothing')), /no such file/);
    await rejects(resolveCheckpoint(path.join(run, 'checkpoints')), /not a run directory/);
    const b = await loadBackbone(run);
    try {
      assert.is(b.config.numHeads, 4);
      assert.is(b.headsFrom, 'run config');
      assert.equal(
        b.ignored.filter((k) => !k.startsWith('head.')),
        [],
        'only the projection head is left out',
      );
      const got = await b.backbone.stateDict();
      const want = new Map([...(await models.teacher.stateDict())].filter(([k]) => k.startsWith('backbone.')).map(([k, v]) => [k.slice('backbone.'.length), v]));
      assert.equal([...got.keys()], [...want.keys()]);
      for (const [k, v] of want) assert.equal(got.get(k)!.data, v.data, k);
    } finally {
      b.backbone.dispose();
    }
  } finally {
    models.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test('smkd eval end to end: JSON to a file and to stdout, equal to the evaluation computed directly', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'evalcli-'));
  const { run, models } = await tinyRun(dir);
  const log = console.log;
  const err = console.error;
  const write = process.stdout.write;
  try {
    const out = path.join(dir, 'report.json');
    const args = [
      '--max-per-class',
      '6',
      '--ways',
      '3',
      '--shots',
      '1,2',
      '--queries',
      '2',
      '--episodes',
      '8',
      '--classifier',
      'prototype,logistic',
      '--features',
      'cls,concat',
      '--seed',
      '4',
    ];
    const printed: string[] = [];
    console.log = (m: string) => printed.push(m);
    await program().parseAsync(['node', 'smkd', 'eval', run, ...args, '--json', out]);
    console.log = log;
    assert.ok(
      printed.some((l) => /accuracy \(95% CI\)/.test(l)),
      'a table on the terminal',
    );
    const rep = JSON.parse(await readFile(out, 'utf8')) as EvalReport & {
      model: { numHeads: number };
      data: { kind: string; split: string; cropSize: number };
      seed: number;
      shiftTta: number;
    };
    assert.is(rep.model.numHeads, 4);
    assert.equal([rep.data.kind, rep.data.split, rep.data.cropSize, rep.seed], ['synthetic', 'test', 32, 4]);
    assert.is(rep.images, 20 * 6);
    assert.is(rep.featureDim, 128);
    assert.is(rep.rows.length, 8);
    assert.equal(
      rep.rows.map((r) => `${r.features}/${r.classifier}/${r.shots}/${r.featureDim}`),
      [
        'cls/prototype/1/64',
        'cls/prototype/2/64',
        'cls/logistic/1/64',
        'cls/logistic/2/64',
        'concat/prototype/1/128',
        'concat/prototype/2/128',
        'concat/logistic/1/128',
        'concat/logistic/2/128',
      ],
    );
    // The same evaluation computed directly from the teacher's backbone and the run's data.
    const cfg = validateConfig({ ...JSON.parse(await readFile(path.join(run, 'config.json'), 'utf8')), seed: 4 });
    const splits = await openSplits(cfg.data, 4);
    // By default a coarse grid (this model: 32 px, patch 4, 8x8) is evaluated with every shift of up to half a patch.
    const { patchSize, imgSize } = models.teacher.backbone.config;
    const radius = defaultShiftRadius(patchSize, imgSize);
    assert.is(radius, Math.min(3, Math.floor(patchSize / 2)));
    assert.ok(radius > 0);
    assert.is(rep.shiftTta, radius);
    const feats = await extractFeatures(models.teacher.backbone, splits.test, {
      size: 32,
      normalize: splits.normalize,
      components: ['cls', 'weighted'],
      indices: capPerClass(splits.test, 6),
      shifts: shiftGrid(radius),
    });
    const direct = episodesReport(feats, { ways: 3, shots: [1, 2], queries: 2, episodes: 8, seed: 4, features: ['cls', 'concat'], classifiers: ['prototype', 'logistic'] });
    rep.rows.forEach((r, i) => {
      assert.ok(r.mean >= 0 && r.mean <= 100 && r.ci95 >= 0 && r.episodes === 8 && r.queries === 2 && r.ways === 3);
      assert.is(r.mean, direct.rows[i].mean, `row ${i} mean`);
      assert.is(r.ci95, direct.rows[i].ci95, `row ${i} ci95`);
    });
    // --json -: the JSON alone on stdout, the table on stderr.
    let stdout = '';
    const stderr: string[] = [];
    process.stdout.write = ((chunk: string) => {
      stdout += chunk;
      return true;
    }) as typeof process.stdout.write;
    console.error = (m: string) => stderr.push(m);
    await program().parseAsync([
      'node',
      'smkd',
      'eval',
      path.join(run, 'checkpoints', 'it-0000003'),
      ...args.slice(0, 8),
      '--episodes',
      '3',
      '--features',
      'pooled',
      '--json',
      '-',
    ]);
    process.stdout.write = write;
    console.error = err;
    const piped = JSON.parse(stdout) as EvalReport;
    assert.equal(
      piped.rows.map((r) => [r.features, r.classifier, r.shots, r.episodes]),
      [
        ['pooled', 'prototype', 1, 3],
        ['pooled', 'prototype', 2, 3],
      ],
    );
    assert.ok(
      stderr.some((l) => /pooled/.test(l)),
      'the table went to stderr',
    );
  } finally {
    console.log = log;
    console.error = err;
    process.stdout.write = write;
    models.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a model scored on alphabets it was trained on (its made_by metadata) gets a warning naming them', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'seen-'));
  const vit = new VisionTransformer(vitConfig('tiny', { depth: 1 })).build({ seed: 1, requiresGrad: false });
  try {
    const file = path.join(dir, 'm.safetensors');
    await saveModel(file, vit, { made_by: JSON.stringify({ data: { trainSplit: ['Greek', 'Latin'] } }) });
    const loaded = await loadBackbone(file);
    assert.equal(loaded.trainedOn, ['Greek', 'Latin']);
    const w = seenClassesWarning(loaded, ['Latin/character01', 'Sanskrit/character02', 'Latin/character03'], 'eval: test');
    assert.match(w ?? '', /^eval: test: warning: .*m\.safetensors was trained on Latin, so this is not a held-out score/);
    assert.is(seenClassesWarning(loaded, ['Sanskrit/character02'], 'eval'), undefined);
    loaded.backbone.dispose();
    // A checkpoint without made_by (every run's) says nothing.
    const plain = path.join(dir, 'p.safetensors');
    await saveModel(plain, vit);
    const p = await loadBackbone(plain);
    assert.is(p.trainedOn, undefined);
    assert.is(seenClassesWarning(p, ['Latin/character01'], 'eval'), undefined);
    p.backbone.dispose();
  } finally {
    vit.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test('an output path that is a folder, or in a folder that does not exist, is refused before any work', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'outputs-'));
  try {
    const none = path.join(dir, 'missing-model.safetensors');
    const cases: [string[], RegExp][] = [
      [['embed', none, dir, '-o', dir], /embed: -o .* is a folder; give a file name/],
      [['plot', dir, '-o', dir], /plot: -o .* is a folder/],
      [['eval', none, '--json', dir], /eval: --json .* is a folder/],
      [['classify', dir, dir, '--model', none, '--json', dir], /classify: --json .* is a folder/],
      [['show', 'matches', none, 'a.png', 'b.png', '-o', dir], /show matches: -o .* is a folder/],
      [['embed', none, dir, '-o', path.join(dir, 'nope', 'e.safetensors')], /embed: -o .*: the folder .*nope does not exist/],
    ];
    for (const [args, re] of cases) await rejects(program().parseAsync(['node', 'smkd', ...args]), re);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('smkd eval rejects bad arguments with a message naming them', async () => {
  const p = program()
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  for (const c of p.commands) c.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  await rejects(p.parseAsync(['node', 'smkd', 'eval', 'x', '--classifier', 'knn']), /knn/);
  await rejects(p.parseAsync(['node', 'smkd', 'eval', 'x', '--features', 'cls,patch']), /patch/);
  await rejects(p.parseAsync(['node', 'smkd', 'eval', 'x', '--queries', 'some']), /some/);
  // Zero or negative counts are refused before any work (a batch of 0 images would never end).
  for (const [cmd, flag, v, re] of [
    ['eval', '--batch-size', '0', /'0' is not a positive integer/],
    ['eval', '--episodes', '-3', /'-3' is not a positive integer/],
    ['eval', '--shots', '1,0', /'0' is not a positive integer/],
    ['eval', '--ways', '1', /an episode needs at least 2 classes/],
    ['eval', '--max-per-class', '-1', /'-1' is not a non-negative integer/],
    ['embed', '--batch-size', '0', /'0' is not a positive integer/],
    ['embed', '--resize', '-1', /'-1' is not a positive integer/],
    ['classify', '--batch-size', '0', /'0' is not a positive integer/],
    ['train', '--epochs', '0', /'0' is not a positive integer/],
    ['train', '--workers', '-1', /'-1' is not a non-negative integer/],
  ] as const) {
    const args = cmd === 'classify' ? ['x', 'y'] : cmd === 'train' ? ['--phase', '1'] : ['x'];
    await rejects(p.parseAsync(['node', 'smkd', cmd, ...args, flag, v]), re);
  }
  await rejects(program().parseAsync(['node', 'smkd', 'eval', path.join(tmpdir(), 'no-such-checkpoint-xyz')]), /no such file/);
});

test('a checkpoint file alone evaluates as its run does: the preprocessing in its metadata (normalisation, resize, feature kind)', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'evalcli-'));
  const base = preset('omniglot', 1);
  const cfg = validateConfig({ ...base, out: path.join(dir, 'run'), model: { ...base.model, depth: 1 } });
  const models = modelsFor(cfg, 133);
  const splits = await openSplits(cfg.data, 0);
  const write = process.stdout.write;
  try {
    const ckpt = await saveCheckpoint(
      cfg.out,
      { models, optimizer: new AdamW(models.student.arena), preprocessing: { imageSize: 28, invert: false, normalize: splits.normalize, resizeRatio: 1, features: 'tokens' } },
      { iteration: 1, phase: 1 },
    );
    await writeFile(path.join(cfg.out, 'config.json'), JSON.stringify({ ...cfg, data: { ...cfg.data, normalize: splits.normalize } }));
    const alone = path.join(dir, 'exported.safetensors');
    await copyFile(path.join(ckpt, 'teacher.safetensors'), alone);
    const reports: { rows: { features: string; mean: number; seconds: number }[]; data: { normalize: unknown; cropSize: number } }[] = [];
    for (const target of [cfg.out, alone]) {
      let out = '';
      process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
      const err = console.error;
      console.error = () => undefined;
      await program().parseAsync(['node', 'smkd', 'eval', target, '--episodes', '20', '--shots', '1', '--json', '-']);
      console.error = err;
      process.stdout.write = write;
      reports.push(JSON.parse(out));
    }
    assert.equal(
      reports[1].rows.map((r) => r.features),
      ['tokens'],
    );
    assert.equal(reports[1].data, reports[0].data);
    assert.equal(
      reports[1].rows,
      reports[0].rows.map((r, i) => ({ ...r, seconds: reports[1].rows[i].seconds })),
    );
  } finally {
    process.stdout.write = write;
    models.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
