// gradcheck passes ops whose backward is right (composites of the engine's ops, a custom op with its
// own backward rule, several inputs with broadcasting) and catches the usual bugs of a hand-written
// backward: a missing term, a wrong sign, a gradient not reduced over a broadcast axis.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { gpu } from '../helpers/check.js';

const test = suite('gradcheck');
test.before(gpu);

/** SiLU x * sigmoid(x) as a custom op whose backward rule is `rule` (the right one: s (1 + x (1 - s))). */
function silu(rule: (x: E.Tensor, s: E.Tensor, g: E.Tensor) => E.Tensor<'f32'>) {
  return (x: E.Tensor<'f32'>): E.Tensor<'f32'> => {
    const y = E.noGrad(() => E.mul(x, E.sigmoid(x)));
    E.recordOp('silu', [x], [y], ([g], [sx]) => [E.tidy(() => rule(sx, E.sigmoid(sx), g!))], [x]);
    return y;
  };
}
const right = silu((x, s, g) => E.mul(g, E.mul(s, E.add(E.mul(x, E.sub(1, s)), 1))));
const missingTerm = silu((_x, s, g) => E.mul(g, s));
const wrongSign = silu((x, s, g) => E.mul(g, E.mul(s, E.sub(1, E.mul(x, E.sub(1, s))))));

test('right gradients pass: a custom op, composites of engine ops, two inputs with broadcasting', async () => {
  const x = E.randn([7, 13], 3);
  const r1 = await gradcheck1(right, x);
  assert.ok(r1.ok && r1.checked === 64, JSON.stringify(r1));
  const w = E.randn([13, 5], 4);
  const b = E.randn([5], 5);
  const r2 = await E.gradcheck((a, m, c) => E.tanh(E.add(E.matmul(a, m), c)), [x, w, b], { samples: 30 });
  assert.ok(r2.ok, JSON.stringify(r2));
  assert.is(r2.checked, 30 + 30 + 5);
  const r3 = await E.gradcheck((a) => E.layerNorm(a, undefined, undefined, 1e-5), [x]);
  assert.ok(r3.ok, JSON.stringify(r3));
  for (const t of [x, w, b]) t.dispose();
});

async function gradcheck1(f: (x: E.Tensor<'f32'>) => E.Tensor<'f32'>, x: E.Tensor, raise = true): Promise<E.GradcheckResult> {
  return E.gradcheck(f, [x], { raise });
}

test('a missing term, a wrong sign and an unreduced broadcast gradient are caught, naming the input and element', async () => {
  const x = E.randn([7, 13], 3);
  for (const bad of [missingTerm, wrongSign]) {
    const r = await gradcheck1(bad, x, false);
    assert.not.ok(r.ok);
    assert.ok(r.worst!.error > 0.05, JSON.stringify(r.worst));
  }
  let message = '';
  await gradcheck1(missingTerm, x).catch((e: Error) => (message = e.message));
  assert.match(message, /^gradcheck: the gradient of input 0 \[7, 13\] at element \d+ is -?[\d.e-]+, but finite differences give -?[\d.e-]+/);
  // A bias added by broadcasting whose gradient is the first row instead of the column sum.
  const b = E.randn([13], 6);
  const addBias = (a: E.Tensor<'f32'>, c: E.Tensor<'f32'>): E.Tensor<'f32'> => {
    const y = E.noGrad(() => E.add(a, c));
    E.recordOp('badBias', [a, c], [y], ([g]) => [g!, E.reshape(E.narrow(g!, 0, 0, 1), [13])]);
    return y;
  };
  const r = await E.gradcheck(addBias, [x, b], { raise: false });
  assert.not.ok(r.ok);
  assert.is(r.worst!.input, 1);
  await E.gradcheck((a) => a, [E.fromArray([1, 2], [2], 'i32')]).then(
    () => assert.unreachable('an integer input'),
    (e: Error) => assert.match(e.message, /input 0 is i32 \[2\]; only f32 inputs have gradients/),
  );
  for (const t of [x, b]) t.dispose();
});

test.run();
