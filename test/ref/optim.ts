// Float64 references of the optimiser arithmetic: torch.optim.AdamW (single-tensor path), DINO's
// per-tensor gradient clipping, torch.nn.utils.clip_grad_norm_, and the teacher EMA.

export type F64 = Float64Array;

export interface AdamWRefParam {
  param: F64;
  expAvg: F64;
  expAvgSq: F64;
  step: number;
  decay: boolean;
  /** A parameter group's own lr / weight decay (torch's param_groups; its decay applies whatever `decay` says). */
  lr?: number;
  weightDecay?: number;
}

export interface AdamWRefHyper {
  lr: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** One AdamW step of every parameter with a gradient (null = skipped entirely), in place. */
export function adamwStepRef(ps: AdamWRefParam[], grads: (F64 | null)[], h: AdamWRefHyper): void {
  const b1 = h.beta1 ?? 0.9;
  const b2 = h.beta2 ?? 0.999;
  const eps = h.eps ?? 1e-8;
  ps.forEach((p, k) => {
    const g = grads[k];
    if (!g) return;
    p.step += 1;
    const bc1 = 1 - b1 ** p.step;
    const bc2 = 1 - b2 ** p.step;
    const lr = p.lr ?? h.lr;
    const wd = p.weightDecay ?? (p.decay ? h.weightDecay : 0);
    for (let i = 0; i < p.param.length; i++) {
      p.param[i] *= 1 - lr * wd;
      p.expAvg[i] = b1 * p.expAvg[i] + (1 - b1) * g[i];
      p.expAvgSq[i] = b2 * p.expAvgSq[i] + (1 - b2) * g[i] * g[i];
      const denom = Math.sqrt(p.expAvgSq[i]) / Math.sqrt(bc2) + eps;
      p.param[i] -= (lr / bc1) * (p.expAvg[i] / denom);
    }
  });
}

function norm(x: F64): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s);
}

export interface ClipRef {
  norms: number[];
  factors: number[];
  totalNorm: number;
  clipped: (F64 | null)[];
}

function scaled(grads: (F64 | null)[], factors: number[]): (F64 | null)[] {
  return grads.map((g, k) => (g ? g.map((v) => v * factors[k]) : null));
}

/** DINO's clip_gradients (docs/algorithm.md §7.5): each tensor scaled by clip/(‖g‖ + 1e-6) when that is below 1. */
export function clipPerTensorRef(grads: (F64 | null)[], clip: number): ClipRef {
  const norms = grads.map((g) => (g ? norm(g) : 0));
  const factors = grads.map((g, k) => {
    const coef = clip / (norms[k] + 1e-6);
    return g && coef < 1 ? coef : 1;
  });
  return { norms, factors, totalNorm: Math.hypot(...norms), clipped: scaled(grads, factors) };
}

/** torch.nn.utils.clip_grad_norm_: all gradients scaled by min(1, maxNorm/(‖all‖ + 1e-6)). */
export function clipGlobalRef(grads: (F64 | null)[], maxNorm: number): ClipRef {
  const norms = grads.map((g) => (g ? norm(g) : 0));
  const totalNorm = Math.hypot(...norms);
  const coef = Math.min(1, maxNorm / (totalNorm + 1e-6));
  const factors = grads.map((g) => (g ? coef : 1));
  return { norms, factors, totalNorm, clipped: scaled(grads, factors) };
}

/** θ_t ← m·θ_t + (1 − m)·θ_s. */
export function emaRef(teacher: F64, student: F64, m: number): F64 {
  return teacher.map((t, i) => m * t + (1 - m) * student[i]);
}
