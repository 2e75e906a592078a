"""One SMKD iteration of a trainer preset in PyTorch: train/trainer.ts recordStep + updateStep.

Built from scripts/reference/make_golden.py, whose pieces the golden tests prove equal to ours:
backbone_forward, head_forward, ibot_loss (phase 1), smkd_cls_loss (phase 2), update_centers, the
Optimiser (per-tensor clipping, then torch.optim.AdamW in two groups) and the teacher EMA. The one
piece written here is the patch term of phase 2 in batched form (patch_loss): make_golden's
smkd_patch_loss is a Python loop over (view pair, class, image pair), which would time the
interpreter; every agreement also computes that loop and reports its difference from this one.

Order, as ours: teacher forward (no gradients), student forward on the masked global crops, the
phase's loss plus the supervised cross-entropy on the student's [cls] tokens (docs/algorithm.md §5.7)
with the centres as they were, centre update, backward, clipping, AdamW, EMA. Student, teacher,
centres and AdamW state come from ours (the setup file), and so does the batch of `step`/`agree`
(crops, masks, labels); `loop` draws its own batches (omniglot_loader.py).
"""
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

import make_golden as mg
from omniglot_loader import OmniglotLoader


class Pairs:
    """Every (s, t, x, y) of the patch term (docs/algorithm.md §5.5): views s ≠ t, images x ≠ y of one class."""

    def __init__(self, labels, G):
        rows = []
        self.terms = 0  # the (s, t, y) the loss averages over
        for s in range(G):
            for tv in range(G):
                if s == tv:
                    continue
                for grp in mg.label_groups(labels):
                    if len(grp) < 2:
                        continue
                    self.terms += len(grp)
                    rows += [(s, tv, xi, y, len(grp)) for y in grp for xi in grp if xi != y]
        r = torch.tensor(rows, dtype=torch.long).reshape(-1, 5)
        self.s, self.t, self.x, self.y, self.k = r.unbind(1)


def patch_loss(x, pairs, o, weighted):
    """make_golden.smkd_patch_loss over the pairs at once: match, gather, soft cross-entropy, mean over (s, t, y)."""
    G, B = o['G'], x['teacher_patch'].shape[0] // o['G']
    Np, K = x['teacher_patch'].shape[1], x['teacher_patch'].shape[2]
    if pairs.terms == 0:
        return x['teacher_patch'].new_zeros(())
    pt = mg.teacher_probs(x['teacher_patch'], o['center2'], o['teacher_patch_temp']).reshape(G, B, Np, K)
    ls = F.log_softmax(x['student_patch'] / o['student_temp'], -1).reshape(G, B, Np, K)
    fs = mg.normalized_features(x['student_feat'], G, B)
    ft = mg.normalized_features(x['teacher_feat'], G, B)
    s, t, xi, y = pairs.s, pairs.t, pairs.x, pairs.y
    # match[p, j]: the student patch n of (s, x) most similar to teacher patch j of (t, y).
    match = (ft[t, y] @ fs[s, xi].transpose(1, 2)).argmax(-1)
    picked = ls[s, xi].gather(1, match[..., None].expand(-1, -1, K))
    ell = -(pt[t, y] * picked).sum(-1)  # [pairs, Np]
    if weighted:
        a = x['teacher_cls_attn'] / x['teacher_cls_attn'].sum(-1, keepdim=True)
        contrib = (a.reshape(G, B, Np)[t, y] * ell).sum(-1) / (pairs.k - 1)
    else:
        contrib = ell.sum(-1) / ((pairs.k - 1) * Np)
    return contrib.sum() / pairs.terms


class SmkdStep:
    def __init__(self, T, cfg):
        self.cfg = cfg
        self.vit = cfg['vit']
        self.G = cfg['G']
        shapes = {p['name']: T[f'student.{p["name"]}'].shape for p in cfg['params']}
        for p in cfg['params']:
            if p['trainable'] and mg.is_decayed(p['name'], shapes[p['name']]) != p['decay']:
                raise ValueError(f'{p["name"]}: ours puts it {"in" if p["decay"] else "out of"} the decay group, make_golden.is_decayed does not')
        trainable = {p['name']: T[f'student.{p["name"]}'] for p in cfg['params'] if p['trainable']}
        steps = cfg['adam_steps']
        state = {n: (steps[n], T[f'exp_avg.{n}'].reshape(a.shape), T[f'exp_avg_sq.{n}'].reshape(a.shape)) for n, a in trainable.items() if steps.get(n, 0) > 0}
        self.opt = mg.Optimiser(trainable, state)
        frozen = {p['name']: torch.from_numpy(T[f'student.{p["name"]}']) for p in cfg['params'] if not p['trainable']}
        self.S = {**self.opt.p, **frozen}
        self.T = {k[len('teacher.'):]: torch.from_numpy(a) for k, a in T.items() if k.startswith('teacher.')}
        self.student = (mg.sub(self.S, 'backbone.'), mg.sub(self.S, 'head.'))
        self.teacher = (mg.sub(self.T, 'backbone.'), mg.sub(self.T, 'head.'))
        self.center = torch.from_numpy(T['center'])
        self.center2 = torch.from_numpy(T['center2'])
        self.batch = None
        if 'in.globals' in T:
            self.batch = self.make_batch(torch.from_numpy(T['in.globals']), torch.from_numpy(T['in.masks']), [int(v) for v in T['in.labels']])
        self.loader = OmniglotLoader(cfg['loop']) if 'loop' in cfg else None

    def make_batch(self, globals_, masks, labels):
        pairs = Pairs(labels, self.G) if self.cfg['phase'] == 2 else None
        return {'globals': globals_, 'masks': masks, 'labels': labels, 'targets': torch.tensor(labels).repeat(self.G), 'pairs': pairs}

    def losses(self, batch, hp, golden_patch=False):
        """recordStep: the loss terms (tensors), the centres updated, the gradients in the student's parameters."""
        c, L = self.cfg, self.cfg['loss']
        v, G = self.vit, self.G
        with torch.no_grad():
            tt, tattn = mg.backbone_forward(self.teacher[0], batch['globals'], v)
            th = mg.head_forward(self.teacher[1], tt)
        st, _ = mg.backbone_forward(self.student[0], batch['globals'], v, masks=batch['masks'])
        sh = mg.head_forward(self.student[1], st)
        K = th.shape[-1]
        x = {'teacher_cls': th[:, 0], 'teacher_patch': th[:, 1:], 'student_cls': sh[:, 0], 'student_patch': sh[:, 1:]}
        o = {'G': G, 'center': self.center, 'center2': self.center2, 'student_temp': c['student_temp'], 'teacher_temp': hp['teacher_temp'],
             'teacher_patch_temp': hp['teacher_patch_temp'], 'lambda1': L['lambda1'], 'lambda3': L['lambda3']}
        no_locals = sh.new_zeros((0, K))  # the preset has no local crops (ibot_loss concatenates them)
        checks = {}
        if c['phase'] == 1:
            total, cls, mim = mg.ibot_loss({**x, 'student_local_cls': no_locals, 'masks': batch['masks']}, o)
            terms = {'cls': cls, 'mim': mim}
        else:
            x.update(student_local_cls=None, teacher_feat=tt[:, 1:], student_feat=st[:, 1:].detach(), teacher_cls_attn=mg.cls_attention(tattn))
            weighted = L['patch_weighting'] == 'weighted'
            cls = mg.smkd_cls_loss(x, batch['labels'], o)
            patch = patch_loss(x, batch['pairs'], o, weighted)
            total = L['lambda1'] * cls + L['lambda2'] * patch
            terms = {'cls': cls, 'patch': patch}
            if L['lambda3'] > 0:
                mim = mg.ibot_loss({**x, 'student_local_cls': no_locals, 'masks': batch['masks']}, {**o, 'lambda1': 0.0})[2]
                total = total + L['lambda3'] * mim
                terms['mim'] = mim
            if golden_patch:
                with torch.no_grad():
                    match, _ = mg.match_all(x['student_feat'], x['teacher_feat'], G, len(batch['labels']))
                    ref = mg.smkd_patch_loss(x, batch['labels'], o, match, weighted).item()
                checks['patch_vs_make_golden'] = abs(patch.item() - ref) / max(abs(ref), 1e-30)
        if L['supervised_ce'] > 0:
            logits = F.linear(st[:, 0], self.S['backbone.head.weight'], self.S['backbone.head.bias'])
            ce = F.cross_entropy(logits, batch['targets'])
            total = total + L['supervised_ce'] * ce
            terms['ce'] = ce
        self.center, self.center2 = mg.update_centers(self.center, self.center2, th[:, 0], th[:, 1:], c['center_momentum'])
        total.backward()
        return {'total': total, **terms}, checks

    def update(self, hp):
        """updateStep: per-tensor clipping, AdamW, teacher EMA (the last layer is not frozen, as bench/profile.ts's step)."""
        clip = self.cfg['clip'] if self.cfg['clip'] > 0 else math.inf  # 0: no clipping, as ours
        self.opt.update(clip, lambda n: False, hp['lr'], hp['weight_decay'])
        mg.ema_(self.T, self.S, hp['momentum'])

    def step(self, batch=None, hp=None, golden_patch=False):
        terms, checks = self.losses(batch or self.batch, hp or self.cfg['hyper'], golden_patch)
        self.update(hp or self.cfg['hyper'])
        return {k: v.item() for k, v in terms.items()}, checks

    def agree(self, steps):
        out, checks = [], {}
        for _ in range(steps):
            terms, c = self.step(golden_patch=True)
            out.append(terms)
            for k, e in c.items():
                checks[k] = max(checks.get(k, 0.0), e)
        return {'losses': out, 'checks': checks}

    def loop(self, warmup, n):
        """The real loop: each iteration's batch from the loader (sampling, augmentation, masks), its schedule values, the step, the losses read."""
        sched = self.cfg['loop']['schedule']
        t0 = 0.0
        for it in range(warmup + n):
            if it == warmup:
                t0 = time.perf_counter()
            g, m, labels = self.loader.batch_at(it)
            hp = {k: sched[k][it] for k in sched}
            terms, _ = self.step(self.make_batch(g, m, labels), hp)
            if not all(np.isfinite(list(terms.values()))):
                raise FloatingPointError(f'iteration {it}: loss {terms}')
        return {'seconds': time.perf_counter() - t0, 'crops': n * self.loader.crops_per_batch}
