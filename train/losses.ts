// The distillation losses of both phases and the centre update (docs/algorithm.md §5.3-§5.5, §5.8), built on the fused
// soft cross-entropy and cosine-argmax ops. Everything that depends only on labels and masks (pair
// masks, group layout, weights) is built on the host and uploaded; nothing is read back.
import {
  add,
  clamp,
  compare,
  cosineArgmax,
  div,
  fill,
  fromArray,
  indexSelect,
  log,
  matmul,
  mul,
  noGrad,
  permute,
  reshape,
  softCrossEntropy,
  softCrossEntropyPairs,
  softmax,
  sub,
  sum,
  tidy,
  updateCenter,
  type Tensor,
  fmt,
} from '../engine/index.js';

/** Head outputs of one step, shared by both phases. Crop-major: row v·B + i is view v of image i. */
export interface HeadOutputs {
  /** [G·B, K] teacher [cls] head outputs of the G (unmasked) global views. */
  teacherCls: Tensor;
  /** [G·B, K] student [cls] head outputs of the G (masked) global views. */
  studentCls: Tensor;
  /** [L·B, K] student [cls] head outputs of the L local views; omit when L = 0. */
  studentLocalCls?: Tensor;
  /** [G·B, Np, K] teacher patch head outputs of the global views. */
  teacherPatch: Tensor;
  /** [G·B, Np, K] student patch head outputs of the masked global views. */
  studentPatch: Tensor;
}

/** Phase-1 (iBOT) inputs. */
export interface IbotInputs extends HeadOutputs {
  /** [G·B·Np] host MIM masks of the student's global views, row-major [G·B, Np], non-zero = masked. */
  masks: ArrayLike<number>;
  /** Number of global views G (default 2); B = rows of teacherCls / G. */
  globalViews?: number;
}

/** Phase-2 (SMKD) inputs. */
export interface SmkdInputs extends HeadOutputs {
  /** [B] host labels of the images (only equality matters). B fixes G = rows of teacherCls / B. */
  labels: ArrayLike<number>;
  /** [G·B, Np, D] teacher backbone patch tokens (final LayerNorm, [cls] excluded), for matching. */
  teacherFeatures: Tensor;
  /** [G·B, Np, D] student backbone patch tokens of the masked views, for matching (never differentiated). */
  studentFeatures: Tensor;
  /** [G·B, Np] teacher last-block [cls]->patch attention, mean over heads; needed by patchWeighting 'weighted'. */
  teacherClsAttention?: Tensor;
  /** [G·B·Np] host MIM masks as in IbotInputs; needed when lambda3 > 0. */
  masks?: ArrayLike<number>;
}

/** Temperatures (they follow the per-epoch schedules) and centres of one step. */
export interface DistillOptions {
  /** τ_s, [cls] and patches. */
  studentTemp: number;
  /** τ_t(e), teacher [cls]. */
  teacherTemp: number;
  /** τ'_t(e), teacher patches. */
  teacherPatchTemp: number;
  /** c, K values (the reference code's shape [1, K]). */
  center: Tensor;
  /** c', K values (the reference code's shape [1, 1, K]). */
  center2: Tensor;
}

export interface IbotLossOptions extends DistillOptions {
  /** Weight of the [cls] term (default 1). */
  lambda1?: number;
  /** Weight of the MIM term (default 1). */
  lambda3?: number;
}

export interface SmkdLossOptions extends DistillOptions {
  /** Weight of the [cls] term (default 1). */
  lambda1?: number;
  /** Weight of the cross-image patch term (default 1). */
  lambda2?: number;
  /** Weight of the MIM term (default 0: not computed). */
  lambda3?: number;
  /** 'uniform' (default) or 'weighted' by the teacher's [cls] attention (docs/algorithm.md §5.5). */
  patchWeighting?: 'uniform' | 'weighted';
  /** Keep the same-image pair in the global-global [cls] term (docs/algorithm.md §11.8; default false, as the reference code). */
  keepGlobalSelfPairs?: boolean;
}

/** Scalar losses; `total` carries the graph to the student outputs (constant 0 when every term is empty). */
export interface IbotLoss {
  total: Tensor<'f32'>;
  cls: Tensor<'f32'>;
  mim: Tensor<'f32'>;
}

export interface SmkdLoss {
  total: Tensor<'f32'>;
  cls: Tensor<'f32'>;
  patch: Tensor<'f32'>;
  /** Present when lambda3 > 0. */
  mim?: Tensor<'f32'>;
}

interface Layout {
  G: number;
  B: number;
  L: number;
  Np: number;
  K: number;
}

function describe(x: HeadOutputs): string {
  const parts = Object.entries(x).filter((e): e is [string, Tensor] => typeof e[1] === 'object' && e[1] !== null && 'shape' in e[1]);
  return parts.map(([k, t]) => `${k} ${fmt(t.shape)}`).join(', ');
}

function checkLayout(op: string, x: HeadOutputs, G: number, B: number): Layout {
  const fail = (why: string): never => {
    throw new Error(`${op}(${describe(x)}): ${why}`);
  };
  if (!(G >= 1 && B >= 1 && Number.isInteger(G) && Number.isInteger(B))) fail(`G = ${G} global views of B = ${B} images is not a valid layout`);
  const [rows, K] = x.teacherCls.shape;
  if (x.teacherCls.rank !== 2 || rows !== G * B) fail(`teacherCls must be [G·B, K] = [${G * B}, K]`);
  if (x.studentCls.rank !== 2 || x.studentCls.shape[0] !== rows || x.studentCls.shape[1] !== K) fail('studentCls must have the shape of teacherCls');
  const local = x.studentLocalCls;
  if (local && (local.rank !== 2 || local.shape[1] !== K || local.shape[0] % B !== 0)) fail(`studentLocalCls must be [L·B, K] with B = ${B}, K = ${K}`);
  const [pr, Np, pk] = x.teacherPatch.shape;
  if (x.teacherPatch.rank !== 3 || pr !== rows || pk !== K) fail(`teacherPatch must be [G·B, Np, K] = [${rows}, Np, ${K}]`);
  if (fmt(x.studentPatch.shape) !== fmt(x.teacherPatch.shape)) fail('studentPatch must have the shape of teacherPatch');
  return { G, B, L: local ? local.shape[0] / B : 0, Np, K };
}

/** Σ λ·term over the terms with λ ≠ 0 (a zero-weighted term stays out of the graph); never one of the terms itself. */
function weightedSum(terms: [Tensor<'f32'>, number][]): Tensor<'f32'> {
  const used = terms.filter(([, w]) => w !== 0);
  if (used.length === 0) return fill([], 0);
  if (used.length === 1) return mul(used[0][0], used[0][1]);
  return used.map(([t, w]) => (w === 1 ? t : mul(t, w))).reduce((a, b) => add(a, b));
}

function checkMasks(op: string, masks: ArrayLike<number>, { G, B, Np }: Layout): void {
  if (masks.length !== G * B * Np) throw new Error(`${op}: masks hold ${masks.length} values, expected G·B·Np = ${G}·${B}·${Np}`);
}

/** Upload a host mask [G·B·Np] as the MIM row weights m / max(1, Σ_n m) / (G·B) (docs/algorithm.md §5.3). */
function mimWeights(masks: ArrayLike<number>, { G, B, Np }: Layout): Tensor<'f32'> {
  const w = new Float64Array(G * B * Np);
  for (let r = 0; r < G * B; r++) {
    let count = 0;
    for (let n = 0; n < Np; n++) if (masks[r * Np + n]) count++;
    for (let n = 0; n < Np; n++) if (masks[r * Np + n]) w[r * Np + n] = 1 / (Math.max(1, count) * G * B);
  }
  return fromArray(w, [G * B, Np]);
}

/** L_mim (docs/algorithm.md §5.3): masked positions only, mean over each crop's masked patches, then over crops. */
function mimLoss(x: HeadOutputs, masks: ArrayLike<number>, layout: Layout, o: DistillOptions): Tensor<'f32'> {
  const weight = mimWeights(masks, layout);
  const rows = softCrossEntropy(x.studentPatch, x.teacherPatch, { studentTemp: o.studentTemp, teacherTemp: o.teacherPatchTemp, center: o.center2, weight });
  return sum(rows);
}

/**
 * Σ over the [cls] pairs selected by two host masks, divided by `count`: teacher global rows against
 * student global rows (globalMask [G·B, G·B]) and against student local rows (localMask [G·B, L·B]).
 * Two pair launches instead of one over a concatenation, so the student rows are never copied.
 */
function clsLoss(x: HeadOutputs, globalMask: Float64Array, localMask: Float64Array, count: number, { G, B, L }: Layout, o: DistillOptions): Tensor<'f32'> {
  if (count === 0) return fill([], 0);
  const temps = { studentTemp: o.studentTemp, teacherTemp: o.teacherTemp, center: o.center };
  let total = softCrossEntropyPairs(x.studentCls, x.teacherCls, fromArray(globalMask, [G * B, G * B]), temps);
  if (L > 0 && x.studentLocalCls) total = add(total, softCrossEntropyPairs(x.studentLocalCls, x.teacherCls, fromArray(localMask, [G * B, L * B]), temps));
  return div(total, count);
}

/** Global-local same-image [cls] pairs (both phases): teacher (q, i) with every local view (v, i). */
function localPairs({ G, B, L }: Layout): Float64Array {
  const m = new Float64Array(G * B * L * B);
  for (let q = 0; q < G; q++) for (let i = 0; i < B; i++) for (let v = 0; v < L; v++) m[(q * B + i) * L * B + v * B + i] = 1;
  return m;
}

/**
 * Phase-1 iBOT loss (docs/algorithm.md §5.3): [cls] self-distillation over every (teacher global view q, student view
 * v ≠ q) of the same image, local views included, and the masked-image-modelling term on patches.
 */
export function ibotLoss(inputs: IbotInputs, opts: IbotLossOptions): IbotLoss {
  const G = inputs.globalViews ?? 2;
  const layout = checkLayout('ibotLoss', inputs, G, inputs.teacherCls.shape[0] / G);
  const { B, L } = layout;
  checkMasks('ibotLoss', inputs.masks, layout);
  return tidy(() => {
    const global = new Float64Array(G * B * G * B);
    for (let q = 0; q < G; q++) for (let v = 0; v < G; v++) if (v !== q) for (let i = 0; i < B; i++) global[(q * B + i) * G * B + v * B + i] = 1;
    const cls = clsLoss(inputs, global, localPairs(layout), G * (G + L - 1) * B, layout, opts);
    const mim = mimLoss(inputs, inputs.masks, layout, opts);
    const total = weightedSum([
      [cls, opts.lambda1 ?? 1],
      [mim, opts.lambda3 ?? 1],
    ]);
    return { total, cls, mim };
  });
}

/**
 * Host layout of the patch loss (docs/algorithm.md §5.5): one pair problem per (ordered view pair (s, t), label group g
 * with k ≥ 2), problem e = p·groups.length + g. Its student rows are the group's images in view s,
 * its teacher rows the same images in view t, each padded to the largest group (padding repeats the
 * first member and gets weight 0).
 */
export interface PatchPlan {
  /** Ordered pairs (student view s, teacher view t), s ≠ t. */
  viewPairs: [number, number][];
  /** Images of each label with at least two images, ascending. */
  groups: number[][];
  /** Size of the largest group (slots per problem). */
  kmax: number;
  /** [E·kmax] row s·B + x of the [G·B, ...] inputs for problem e, slot m. */
  studentRows: Int32Array;
  /** [E·kmax] row t·B + y. */
  teacherRows: Int32Array;
  /** Number of contributions (s, t, I, y) the loss averages: Σ over view pairs and groups of k. */
  count: number;
}

/** The patch-loss layout for host labels [B] and G global views. */
export function patchPlan(labels: ArrayLike<number>, G: number): PatchPlan {
  const B = labels.length;
  const byLabel = new Map<number, number[]>();
  for (let i = 0; i < B; i++) {
    const g = byLabel.get(labels[i]);
    if (g) g.push(i);
    else byLabel.set(labels[i], [i]);
  }
  const groups = [...byLabel.values()].filter((g) => g.length >= 2);
  const kmax = Math.max(0, ...groups.map((g) => g.length));
  const viewPairs: [number, number][] = [];
  for (let s = 0; s < G; s++) for (let t = 0; t < G; t++) if (s !== t) viewPairs.push([s, t]);
  const E = viewPairs.length * groups.length;
  const studentRows = new Int32Array(E * kmax);
  const teacherRows = new Int32Array(E * kmax);
  viewPairs.forEach(([s, t], p) =>
    groups.forEach((members, g) => {
      const e = p * groups.length + g;
      for (let m = 0; m < kmax; m++) {
        const image = members[m < members.length ? m : 0];
        studentRows[e * kmax + m] = s * B + image;
        teacherRows[e * kmax + m] = t * B + image;
      }
    }),
  );
  const count = viewPairs.length * groups.reduce((n, g) => n + g.length, 0);
  return { viewPairs, groups, kmax, studentRows, teacherRows, count };
}

/** Rows of `x` [R, ...] picked by host `rows`; `x` itself when the rows are 0..R-1 in order (P×K batches, student side). */
function gatherRows(x: Tensor, rows: Int32Array): Tensor {
  if (rows.length === x.shape[0] && rows.every((r, i) => r === i)) return x;
  return indexSelect(x, 0, fromArray(rows, [rows.length], 'i32'));
}

/**
 * Patch matches of every problem of `plan`: i32 [E, kmax, kmax, Np], entry [e, x, y, j] =
 * argmax_n cos(f_t[t, y, j], f_s[s, x, n]) (ties to the lowest n) for slots x, y of problem e.
 * Features [G·B, Np, D] (backbone tokens; normalisation is implied by the cosine). No gradient.
 * Only the D-wide teacher features are repeated (once per student slot) for the batched argmax.
 */
export function matchPatches(plan: PatchPlan, teacherFeatures: Tensor, studentFeatures: Tensor): Tensor<'i32'> {
  const { kmax, teacherRows } = plan;
  const [, Np, D] = teacherFeatures.shape;
  const E = teacherRows.length / Math.max(1, kmax);
  const queryRows = new Int32Array(E * kmax * kmax);
  for (let e = 0; e < E; e++) for (let x = 0; x < kmax; x++) queryRows.set(teacherRows.subarray(e * kmax, (e + 1) * kmax), (e * kmax + x) * kmax);
  return tidy(() => {
    const candidates = gatherRows(studentFeatures, plan.studentRows);
    const queries = reshape(gatherRows(teacherFeatures, queryRows), [E * kmax, kmax * Np, D]);
    return reshape(cosineArgmax(queries, candidates), [E, kmax, kmax, Np]);
  });
}

/** Floor of the aggregated targets before their log: adds at most K·1e-30 of mass to a row. */
const TARGET_FLOOR = 1e-30;

/**
 * The cross-image patch loss (docs/algorithm.md §5.5). Every (teacher patch (y, j), student image x ≠ y) pair of
 * a plan problem adds w·H(P_t[t, y, j], log P_s[s, x, n*]), w = 1/((k-1)·Np·count) uniform or
 * a[t, y, j]/((k-1)·count) weighted. Since H is linear in its target, the teacher distributions are
 * first summed per matched student patch, T = Mᵀ P with the one-hot weighted match matrix M (a batched
 * matmul, no gradient), and the loss is Σ_q H(T_q, log P_s[q]) over student patches q: one fused
 * row-wise cross-entropy with target log T (temperature 1) and row weight c_q = Σ_k T_q[k].
 * Gradient: (c_q·softmax(s_q/τ_s) − T_q)/τ_s. (A masked all-pairs launch computes the same sum but
 * about 7× slower at these shapes on lavapipe: M has only k−1 non-zeros per teacher row.)
 */
function patchLoss(x: SmkdInputs, plan: PatchPlan, weighting: 'uniform' | 'weighted', { Np, K }: Layout, o: DistillOptions): Tensor<'f32'> {
  const { groups, kmax, count } = plan;
  // No problems: no label has two images, or one global view (the term pairs different views).
  const E = kmax ? plan.teacherRows.length / kmax : 0;
  if (E === 0) return fill([], 0);
  // hostW[e, y, x]: the pair weight for real members x ≠ y (times a[t, y, j] when weighted); padding stays 0.
  const hostW = new Float64Array(E * kmax * kmax);
  for (let e = 0; e < E; e++) {
    const k = groups[e % groups.length].length;
    const w = 1 / ((k - 1) * count * (weighting === 'uniform' ? Np : 1));
    for (let y = 0; y < k; y++) for (let xl = 0; xl < k; xl++) if (xl !== y) hostW[(e * kmax + y) * kmax + xl] = w;
  }
  // Its own scope: the match matrix, the probabilities and T are freed before the loss kernels run.
  const { target, rowWeight } = noGrad(() =>
    tidy(() => {
      // match [e, x, y, j] -> [e, y, j, x]: M's rows are teacher patches (y, j), its column blocks student images x.
      const match = reshape(permute(matchPatches(plan, x.teacherFeatures, x.studentFeatures), [0, 2, 3, 1]), [E, kmax, Np, kmax, 1]);
      const oneHot = compare(
        'eq',
        match,
        fromArray(
          Array.from({ length: Np }, (_, n) => n),
          [Np],
          'i32',
        ),
      );
      let weight = fromArray(hostW, [E, kmax, 1, kmax, 1]);
      if (weighting === 'weighted') {
        const attn = x.teacherClsAttention!;
        const a = div(attn, sum(attn, 1, true));
        weight = mul(weight, reshape(gatherRows(a, plan.teacherRows), [E, kmax, Np, 1, 1]));
      }
      const M = reshape(mul(oneHot, weight), [E, kmax * Np, kmax * Np]);
      const probs = softmax(mul(sub(x.teacherPatch, o.center2), 1 / o.teacherPatchTemp));
      const P = reshape(gatherRows(probs, plan.teacherRows), [E, kmax * Np, K]);
      const T = matmul(M, P, { transA: true });
      return { target: log(clamp(T, TARGET_FLOOR)), rowWeight: sum(M, 1) };
    }),
  );
  const student = reshape(gatherRows(x.studentPatch, plan.studentRows), [E, kmax * Np, K]);
  return sum(softCrossEntropy(student, target, { studentTemp: o.studentTemp, teacherTemp: 1, weight: rowWeight }));
}

/**
 * Phase-2 SMKD loss: supervised [cls] distillation (docs/algorithm.md §5.4: global-global pairs of different
 * same-class images for every view pair incl. v = q, plus global-local same-image pairs, divided by
 * G²·n_pos + G·L·B, 0 when that is 0), the cross-image patch loss (docs/algorithm.md §5.5, 0 when no label has two
 * images), and optionally the MIM term (lambda3 > 0). Labels are host values: the structure is built here.
 */
export function smkdLoss(inputs: SmkdInputs, opts: SmkdLossOptions): SmkdLoss {
  const labels = inputs.labels;
  const B = labels.length;
  const layout = checkLayout('smkdLoss', inputs, inputs.teacherCls.shape[0] / B, B);
  const { G, L, Np } = layout;
  for (const [name, f] of [
    ['teacherFeatures', inputs.teacherFeatures],
    ['studentFeatures', inputs.studentFeatures],
  ] as const) {
    if (f.rank !== 3 || f.shape[0] !== G * B || f.shape[1] !== Np) throw new Error(`smkdLoss: ${name} ${fmt(f.shape)} must be [G·B, Np, D] = [${G * B}, ${Np}, D]`);
  }
  if (fmt(inputs.teacherFeatures.shape) !== fmt(inputs.studentFeatures.shape)) {
    throw new Error(`smkdLoss: teacherFeatures ${fmt(inputs.teacherFeatures.shape)} and studentFeatures ${fmt(inputs.studentFeatures.shape)} differ`);
  }
  const attn = inputs.teacherClsAttention;
  if (opts.patchWeighting === 'weighted' && (!attn || fmt(attn.shape) !== fmt([G * B, Np]))) {
    throw new Error(`smkdLoss: patchWeighting 'weighted' needs teacherClsAttention [G·B, Np] = ${fmt([G * B, Np])}, got ${attn ? fmt(attn.shape) : 'none'}`);
  }
  const lambda3 = opts.lambda3 ?? 0;
  if (lambda3 > 0) {
    if (!inputs.masks) throw new Error('smkdLoss: lambda3 > 0 needs the MIM masks');
    checkMasks('smkdLoss', inputs.masks, layout);
  }
  return tidy(() => {
    const keepSelf = opts.keepGlobalSelfPairs ?? false;
    const global = new Float64Array(G * B * G * B);
    let pairs = 0;
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < B; j++) {
        if (labels[i] !== labels[j] || (i === j && !keepSelf)) continue;
        pairs++;
        for (let q = 0; q < G; q++) for (let v = 0; v < G; v++) global[(q * B + i) * G * B + v * B + j] = 1;
      }
    }
    const cls = clsLoss(inputs, global, localPairs(layout), G * G * pairs + G * L * B, layout, opts);
    const patch = patchLoss(inputs, patchPlan(labels, G), opts.patchWeighting ?? 'uniform', layout, opts);
    const mim = lambda3 > 0 ? mimLoss(inputs, inputs.masks!, layout, opts) : undefined;
    const total = weightedSum([[cls, opts.lambda1 ?? 1], [patch, opts.lambda2 ?? 1], ...(mim ? [[mim, lambda3] as [Tensor<'f32'>, number]] : [])]);
    return mim ? { total, cls, patch, mim } : { total, cls, patch };
  });
}

/**
 * Centre EMAs of docs/algorithm.md §5.8, in place, after the step's loss: c from the teacher [cls] outputs [G·B, K],
 * c' from the teacher patch outputs [G·B, Np, K] (the mean over images of the mean over patches,
 * which with equal patch counts is the mean over all rows).
 */
export function updateCenters(center: Tensor, center2: Tensor, teacherCls: Tensor, teacherPatch: Tensor, momentum: number): void {
  updateCenter(center, teacherCls, momentum);
  updateCenter(center2, teacherPatch, momentum);
}
