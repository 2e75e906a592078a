import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { ARENA_ALIGN_BYTES, ParameterArena, type ParameterSpec } from '../../engine/arena.js';
import { close, gpu, randArray, rng, type F64 } from '../helpers/check.js';

const test = suite('arena');
test.before(gpu);

const f32 = (x: ArrayLike<number>): Float32Array => Float32Array.from(x);

/** Awkward sizes: 1, 3, 257 and 1000 elements, with random data. */
function awkwardSpecs(seed: number): ParameterSpec[] {
  const r = rng(seed);
  const shapes = [[1], [3], [257], [8, 125]];
  return shapes.map((shape, k) => ({
    name: `p${k}`,
    shape,
    init: f32(
      randArray(
        shape.reduce((a, b) => a * b, 1),
        r,
      ),
    ),
    decay: shape.length > 1,
  }));
}

test('views are aligned and read and write exactly their own bytes', async () => {
  const specs = awkwardSpecs(1);
  const a = new ParameterArena(specs, { label: 'awkward' });
  try {
    for (const e of a.entries) {
      assert.is(e.offset % (ARENA_ALIGN_BYTES / 4), 0, `${e.name} offset ${e.offset}`);
      assert.is(a.get(e.name).storage.byteOffset, e.offset * 4);
      assert.is(a.get(e.name).storage.buffer, a.data.flat.storage.buffer);
    }
    // reading each view on its own (a binding at the view's offset)
    for (const s of specs)
      close(
        await E.mul(a.get(s.name), 2).toArray(),
        f32(s.init as Float32Array).map((v) => 2 * v),
        0,
        `2 * ${s.name}`,
      );
    // overwrite one parameter: neighbours and padding must keep their bytes
    const fresh = f32(randArray(257, rng(9)));
    a.loadStateDict({ p2: fresh }, false);
    const flat = await a.data.flat.toArray();
    const expected = new Float32Array(a.numel);
    for (const [k, s] of specs.entries()) expected.set(k === 2 ? fresh : (s.init as Float32Array), a.entries[k].offset);
    close(flat, expected, 0, 'whole arena after writing p2');
    const state = await a.stateDict();
    close(state.get('p2')!, fresh, 0, 'stateDict p2');
    close(state.get('p3')!, specs[3].init as Float32Array, 0, 'stateDict p3');
  } finally {
    a.dispose();
  }
});

test('initializers: constant, host data, GPU draw; state round trip; strict loading', async () => {
  const a = new ParameterArena(
    [
      { name: 'w', shape: [5, 7], init: (s) => E.randn(s, 42, 0, 0.02), decay: true },
      { name: 'g', shape: [3], init: 1.5, decay: false },
      { name: 'z', shape: [2, 2], decay: false },
    ],
    { label: 'init' },
  );
  try {
    const drawn = E.randn([5, 7], 42, 0, 0.02);
    close(await a.get('w').toArray(), await drawn.toArray(), 0, 'GPU initializer');
    drawn.dispose();
    close(await a.get('g').toArray(), [1.5, 1.5, 1.5], 0, 'constant');
    close(await a.get('z').toArray(), [0, 0, 0, 0], 0, 'zeros');
    const saved = await a.stateDict();
    a.loadStateDict({ w: new Float32Array(35), g: [1, 2, 3], z: [4, 5, 6, 7] });
    close(await a.get('g').toArray(), [1, 2, 3], 0, 'loaded');
    a.loadStateDict(saved);
    close(await a.get('w').toArray(), saved.get('w')!, 0, 'restored');
    assert.throws(() => a.loadStateDict({ w: new Float32Array(35) }), /missing keys \[g, z\]/);
    assert.throws(() => a.loadStateDict({ g: [1, 2] }, false), /has 2 elements/);
    assert.throws(() => a.get('nope'), /no parameter named 'nope'/);
  } finally {
    a.dispose();
  }
});

test('a teacher laid out like its student: same offsets, holes, one-dispatch copy', async () => {
  const r = rng(3);
  const student = new ParameterArena(
    [
      { name: 'cls_token', shape: [1, 1, 3], init: f32(randArray(3, r)), decay: true },
      { name: 'masked_embed', shape: [1, 5], init: f32(randArray(5, r)), decay: true },
      { name: 'blocks.0.fc.weight', shape: [4, 67], init: f32(randArray(268, r)), decay: true },
    ],
    { label: 'student' },
  );
  const teacher = new ParameterArena(
    [
      { name: 'blocks.0.fc.weight', shape: [4, 67], decay: true },
      { name: 'cls_token', shape: [1, 1, 3], decay: true },
    ],
    { like: student, requiresGrad: false, label: 'teacher' },
  );
  try {
    assert.is(teacher.entry('blocks.0.fc.weight').offset, student.entry('blocks.0.fc.weight').offset);
    assert.is(teacher.numel, student.numel);
    assert.not.ok(teacher.get('cls_token').requiresGrad);
    const before = E.rt().dispatchCount;
    teacher.copyFrom(student);
    assert.is(E.rt().dispatchCount - before, 1, 'copy is one dispatch');
    const s = await student.stateDict();
    const t = await teacher.stateDict();
    assert.equal([...t.keys()], ['blocks.0.fc.weight', 'cls_token']);
    for (const [n, v] of t) close(v, s.get(n)!, 0, `copied ${n}`);
    // the same names in another order land at other offsets
    const other = new ParameterArena(
      [
        { name: 'blocks.0.fc.weight', shape: [4, 67], decay: true },
        { name: 'cls_token', shape: [1, 1, 3], decay: true },
      ],
      { label: 'other' },
    );
    assert.throws(() => other.copyFrom(student), /build other with \{ like: student \}/);
    other.dispose();
    assert.throws(() => new ParameterArena([{ name: 'pos_embed', shape: [2], decay: false }], { like: student }), /no counterpart/);
  } finally {
    teacher.dispose();
    student.dispose();
  }
});

test('backward lands in the gradient arena and accumulates across calls until zeroGrad', async () => {
  const r = rng(5);
  const wv = f32(randArray(15, r));
  const bv = f32(randArray(257, r));
  const a = new ParameterArena(
    [
      { name: 'w', shape: [3, 5], init: wv, decay: true },
      { name: 'unused', shape: [4], init: 1, decay: false },
      { name: 'b', shape: [257], init: bv, decay: false },
      { name: 'fixed', shape: [3, 5], init: 2, decay: true, requiresGrad: false },
    ],
    { label: 'model' },
  );
  const xs: F64[] = [randArray(15, r), randArray(15, r)];
  const cs: F64[] = [randArray(257, r), randArray(257, r)];
  try {
    // loss = sum(w * x * w * fixed) + sum(b * c): dL/dw = 2 * w * x * fixed (w used twice), dL/db = c
    for (let k = 0; k < 2; k++) {
      const loss = E.tidy(() => {
        const w = a.get('w');
        const l1 = E.sum(E.mul(E.mul(E.mul(w, E.fromArray(xs[k], [3, 5])), w), a.get('fixed')));
        return E.add(l1, E.sum(E.mul(a.get('b'), E.fromArray(cs[k], [257]))));
      });
      E.backward(loss);
      loss.dispose();
    }
    const w = a.get('w');
    const gw = w.grad!;
    assert.ok(gw, 'w has a gradient');
    assert.is(gw.storage.buffer, a.grads.flat.storage.buffer, 'w.grad is a view of the gradient arena');
    assert.is(gw.storage.byteOffset, a.entry('w').offset * 4);
    const expectW = Float64Array.from(wv, (v, i) => 2 * v * (xs[0][i] + xs[1][i]) * 2);
    close(await gw.toArray(), expectW, 2e-6, 'accumulated dL/dw');
    close(
      await a.get('b').grad!.toArray(),
      Float64Array.from(bv, (_, i) => cs[0][i] + cs[1][i]),
      2e-6,
      'accumulated dL/db',
    );
    assert.equal([...a.hasGrad], [1, 0, 1, 0]);
    assert.is(a.get('unused').grad, null);
    assert.is(a.get('fixed').grad, null);
    const grads = await a.grads.read();
    close(grads.get('unused')!, [0, 0, 0, 0], 0, 'no gradient stays zero');

    const before = E.rt().dispatchCount;
    a.zeroGrad();
    assert.is(E.rt().dispatchCount - before, 1, 'zeroGrad is one dispatch');
    assert.equal([...a.hasGrad], [0, 0, 0, 0]);
    close(await gw.toArray(), new Float64Array(15), 0, 'zeroed');
    // after zeroGrad, a fresh backward gives the single-call gradient in the same view
    const loss = E.tidy(() => E.sum(E.mul(a.get('b'), E.fromArray(cs[0], [257]))));
    E.backward(loss);
    loss.dispose();
    assert.is(a.get('b').grad, a.grads.view('b'));
    close(await a.get('b').grad!.toArray(), cs[0], 2e-6, 'dL/db after zeroGrad');
    assert.equal([...a.hasGrad], [0, 0, 1, 0]);
  } finally {
    a.dispose();
  }
});

/** float64 layerNorm of rows of x [n, d] (biased variance), with xhat. */
function layerNorm64(x: F64, n: number, d: number, g: F64, b: F64, eps: number): { y: F64; xhat: F64; rstd: F64 } {
  const y = new Float64Array(n * d);
  const xhat = new Float64Array(n * d);
  const rstd = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const row = x.subarray(r * d, (r + 1) * d);
    const mu = row.reduce((a, v) => a + v, 0) / d;
    const v = row.reduce((a, t) => a + (t - mu) ** 2, 0) / d;
    rstd[r] = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < d; c++) {
      xhat[r * d + c] = (row[c] - mu) * rstd[r];
      y[r * d + c] = xhat[r * d + c] * g[c] + b[c];
    }
  }
  return { y, xhat, rstd };
}

test('first gradients of a step are written into the arena slots: values, and one dispatch saved per parameter', async () => {
  // loss = sum_k sum(linear(layerNorm(x_k, g, beta), w, b) * c_k) over two uses of every parameter in one graph,
  // and w also used twice by one op (linear(w, w)): the first use writes the slot, later ones add to it.
  const r = rng(11);
  const [n, d, o] = [37, 6, 5];
  const init = { w: randArray(o * d, r), b: randArray(o, r), g: randArray(d, r, 0.5, 1.5), beta: randArray(d, r) };
  const specs: ParameterSpec[] = [
    { name: 'w', shape: [o, d], init: f32(init.w), decay: true },
    { name: 'b', shape: [o], init: f32(init.b), decay: false },
    { name: 'g', shape: [d], init: f32(init.g), decay: false },
    { name: 'beta', shape: [d], init: f32(init.beta), decay: false },
    { name: 'sq', shape: [d, d], init: f32(randArray(d * d, r)), decay: true },
  ];
  const a = new ParameterArena(specs, { label: 'slots' });
  const xs = [randArray(n * d, r), randArray(n * d, r)];
  const cs = [randArray(n * o, r), randArray(n * o, r)];
  const cq = randArray(d * d, r);
  const wv = Float64Array.from(f32(init.w));
  const gv = Float64Array.from(f32(init.g));
  const sqv = Float64Array.from(f32(specs[4].init as Float32Array));
  const run = (): void => {
    const loss = E.tidy(() => {
      let l = E.sum(E.mul(E.linear(a.get('sq'), a.get('sq')), E.fromArray(cq, [d, d])));
      for (let k = 0; k < 2; k++) {
        const h = E.layerNorm(E.fromArray(xs[k], [n, d]), a.get('g'), a.get('beta'), 1e-5);
        l = E.add(l, E.sum(E.mul(E.linear(h, a.get('w'), a.get('b')), E.fromArray(cs[k], [n, o]))));
      }
      return l;
    });
    E.backward(loss);
    loss.dispose();
  };
  try {
    // float64 reference
    const dw = new Float64Array(o * d);
    const db = new Float64Array(o);
    const dg = new Float64Array(d);
    const dbeta = new Float64Array(d);
    for (let k = 0; k < 2; k++) {
      const { xhat } = layerNorm64(xs[k], n, d, gv, Float64Array.from(f32(init.beta)), 1e-5);
      const h = Float64Array.from(xhat, (v, i) => v * gv[i % d] + f32(init.beta)[i % d]);
      for (let row = 0; row < n; row++) {
        for (let j = 0; j < o; j++) {
          const c = cs[k][row * o + j];
          db[j] += c;
          for (let i = 0; i < d; i++) {
            dw[j * d + i] += c * h[row * d + i];
            const dh = c * wv[j * d + i];
            dg[i] += dh * xhat[row * d + i];
            dbeta[i] += dh;
          }
        }
      }
    }
    // linear(sq, sq) = sq sqᵀ: d/dsq of sum(sq sqᵀ * cq) = (cq + cqᵀ) sq
    const dsq = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) for (let m = 0; m < d; m++) dsq[i * d + m] += (cq[i * d + j] + cq[j * d + i]) * sqv[j * d + m];

    a.zeroGrad(); // allocates the gradient buffer outside the counted dispatches
    const before = E.rt().dispatchCount;
    run();
    const inPlace = E.rt().dispatchCount - before;
    const expect = { w: dw, b: db, g: dg, beta: dbeta, sq: dsq };
    for (const [name, v] of Object.entries(expect)) close(await a.get(name).grad!.toArray(), v, 2e-5, `d${name}, slots written in place`);
    // The same backward on top of gradients already present (every slot taken): twice the values, one more
    // dispatch per parameter whose first gradient was written in place: w, b, g and beta (sq's first use is
    // linear's x, whose rule writes a new tensor).
    const before2 = E.rt().dispatchCount;
    run();
    const accumulated = E.rt().dispatchCount - before2;
    for (const [name, v] of Object.entries(expect))
      close(
        await a.get(name).grad!.toArray(),
        v.map((x) => 2 * x),
        2e-5,
        `d${name}, accumulated`,
      );
    assert.is(accumulated - inPlace, 4, 'dispatches saved by writing into the slots');
  } finally {
    a.dispose();
  }
});

test.run();
