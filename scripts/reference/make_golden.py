"""Golden test vectors for the SMKD engine, from an independent PyTorch implementation of the spec.

A diagnostic, never a dependency of the project: the tests only read the files it writes (the shared
set in ../shared/golden, or another folder through GOLDEN_DIR). It needs Python 3, NumPy and PyTorch
(Debian: python3-torch, python3-numpy; use that interpreter, /usr/bin/python3) and is run by hand:

  python3 scripts/reference/make_golden.py --seed 0 --config scripts/reference/golden-configs/default.json --out /tmp/golden
  python3 scripts/reference/make_golden.py --seed 1 --config scripts/reference/golden-configs/alt.json --out test/golden-alt
  python3 scripts/reference/make_golden.py --check ../shared/golden        # recompute every out.* of a folder
  python3 scripts/reference/make_golden.py --selftest                      # primitives against torch.nn.functional

It writes the eight files the golden README documents (vit_forward, vit_forward_h3d2, head_forward,
loss_phase1, loss_phase2, train_step, fewshot_eval, optim_schedules .safetensors), with the same key
names, dtypes, shape structure and __metadata__ fields, and prints a summary of each (margins, redraws,
entropies, float32 against float64). A --config file holds one section per file, which becomes that
file's `config` metadata, plus the weight `perturbation` (a section may override entries of it;
optim_schedules may list its tensors under "params"). default.json with --seed 0 gives files whose
headers equal the shared set's byte for byte.

`--check DIR` takes each file's own weights and in.* inputs, recomputes every out.* key and prints its
error against the README's tolerance table (relative to max|ref|; exact for matches, predictions and
step counters); it also re-serialises each file and regenerates its header from the metadata's seed
and config, both of which must give the same bytes. It exits non-zero when anything is out of
tolerance.

Spec: docs/algorithm.md (what we implement where it differs from the reference code), and the
choices the golden README lists under "Where the spec was ambiguous": linspace for a one-epoch
temperature warm-up, F.normalize's eps, the pos_embed rule (bicubic, scale factor (g+0.1)/g0,
align_corners False, sigma and source coordinates in float64), ties to the lowest index with inputs
redrawn until every match is beyond the stated margin, the L_patch mean over (s, t, I, y),
degenerate batches = 0 (docs/algorithm.md §11.6), the reference code's patch loss of §5.6, clipping per tensor before freezing,
torch.optim.AdamW itself. Model computations are float32; out.f64.* are float64 re-computations.
Random draws: NumPy's PCG64 (default_rng), one stream per (seed, file name).
"""
import argparse
import json
import math
import os
import struct
import sys
import tempfile
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)

# The metadata strings every file of the shared set carries (its source line, layout and the section list
# of the specification it was written from), kept as data so that regenerated headers equal the shared ones.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'golden-configs', 'metadata.json'), encoding='utf-8') as _f:
    _META = json.load(_f)
SOURCE, LAYOUT, SPEC_SECTIONS = _META['source'], _META['layout'], _META['spec_sections']
F32, F64 = torch.float32, torch.float64


# ----------------------------------------------------------------------------------------------
# safetensors, by hand: 8-byte LE header length, JSON header padded with spaces to a multiple of 8,
# tensors laid out by decreasing element size, then by name.

ST_DTYPES = {'F32': np.dtype('<f4'), 'F64': np.dtype('<f8'), 'I64': np.dtype('<i8'), 'BOOL': np.dtype('bool')}


def st_dtype(a):
    for k, d in ST_DTYPES.items():
        if a.dtype == d:
            return k
    raise TypeError(f'unsupported dtype {a.dtype}')


def write_safetensors(path, tensors, metadata):
    arrays = {k: np.array(v, order='C', copy=True) for k, v in tensors.items()}  # (ascontiguousarray makes 0-d arrays 1-d)
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header = {'__metadata__': metadata}
    offset = 0
    for k in order:
        n = arrays[k].nbytes
        header[k] = {'dtype': st_dtype(arrays[k]), 'shape': list(arrays[k].shape), 'data_offsets': [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for k in order:
            f.write(arrays[k].tobytes())


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', {})
    out = {}
    for k, h in header.items():
        a, b = h['data_offsets']
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=ST_DTYPES[h['dtype']]).reshape(h['shape']).copy()
    return out, meta


def rng_for(seed, name):
    """One PCG64 stream per (seed, file), so each file can be regenerated alone."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])  # PCG64 seeded by SeedSequence([seed, crc32(name)])


def f32(a):
    return np.asarray(a, dtype=np.float32)


def t(a, dtype=F32):
    return torch.tensor(np.asarray(a), dtype=dtype)


def scalar64(x):
    return np.array(x, dtype=np.float64)


def scalar_i64(x):
    return np.array(int(x), dtype=np.int64)


def cfg_json(c):
    return json.dumps(c, sort_keys=True)


def base_metadata(case, cfg, seed):
    return {'case': case, 'spec_sections': SPEC_SECTIONS[case], 'config': cfg_json(cfg), 'seed': str(seed),
            'source': SOURCE, 'torch_version': torch.__version__, 'layout': LAYOUT}


# ----------------------------------------------------------------------------------------------
# Weights (docs/algorithm.md §1.9, §2.4) and the README's perturbation.

def vit_meta(v):
    return {**{k: v[k] for k in ('depth', 'embed_dim', 'img_size', 'mlp_ratio', 'num_heads', 'patch_size')},
            'ln_eps': v.get('ln_eps', 1e-6), 'mlp_hidden': int(v['embed_dim'] * v['mlp_ratio'])}


def head_meta(h, in_dim):
    return {'bottleneck_dim': h['bottleneck_dim'], 'hidden_dim': h['hidden_dim'], 'in_dim': in_dim,
            'norm_last_layer': h['norm_last_layer'], 'out_dim': h['out_dim']}


def perturbation(full, cfg):
    """The config file's perturbation, with a section's own 'perturbation' entries (if any) over it."""
    own = cfg.get('perturbation', {})
    return {part: {**values, **own.get(part, {})} for part, values in full['perturbation'].items()}


def trunc_normal(rng, shape, std=0.02):
    return np.clip(rng.normal(0.0, std, shape), -2.0, 2.0)


def init_backbone(rng, v, pert):
    """Bare backbone state_dict (float32), docs/algorithm.md §1.9 init + perturbation."""
    D, p, depth = v['embed_dim'], v['patch_size'], v['depth']
    hidden = int(D * v['mlp_ratio'])
    g0 = v['img_size'] // p
    pb = pert['backbone']
    bound = 1.0 / math.sqrt(3 * p * p)
    w = {
        'cls_token': trunc_normal(rng, (1, 1, D)) + pb['cls_token_std'] * rng.normal(size=(1, 1, D)),
        'pos_embed': trunc_normal(rng, (1, 1 + g0 * g0, D)) + pb['pos_embed_std'] * rng.normal(size=(1, 1 + g0 * g0, D)),
        'masked_embed': pb['masked_embed_std'] * rng.normal(size=(1, D)),
        'patch_embed.proj.weight': rng.uniform(-bound, bound, (D, 3, p, p)),
        'patch_embed.proj.bias': rng.uniform(-bound, bound, (D,)),
    }

    def ln(name):
        w[f'{name}.weight'] = 1.0 + pb['ln_weight_std'] * rng.normal(size=(D,))
        w[f'{name}.bias'] = pb['ln_bias_std'] * rng.normal(size=(D,))

    def linear(name, n_out, n_in, scale=1.0):
        w[f'{name}.weight'] = scale * trunc_normal(rng, (n_out, n_in))
        w[f'{name}.bias'] = pb['bias_std'] * rng.normal(size=(n_out,))

    for l in range(depth):
        b = f'blocks.{l}'
        ln(f'{b}.norm1')
        linear(f'{b}.attn.qkv', 3 * D, D, pb['qkv_weight_scale'])
        linear(f'{b}.attn.proj', D, D)
        ln(f'{b}.norm2')
        linear(f'{b}.mlp.fc1', hidden, D)
        linear(f'{b}.mlp.fc2', D, hidden)
    ln('norm')
    return {k: f32(a) for k, a in w.items()}


def init_head(rng, in_dim, h, pert):
    """Head state_dict without the 'head.' prefix (float32), docs/algorithm.md §2.4 init + perturbation."""
    ph = pert['head']
    H, b, K = h['hidden_dim'], h['bottleneck_dim'], h['out_dim']
    w = {}
    for name, n_out, n_in in (('mlp.0', H, in_dim), ('mlp.2', H, H), ('mlp.4', b, H)):
        w[f'{name}.weight'] = trunc_normal(rng, (n_out, n_in))
        w[f'{name}.bias'] = ph['bias_std'] * rng.normal(size=(n_out,))
    w['last_layer.weight_v'] = rng.uniform(-1 / math.sqrt(b), 1 / math.sqrt(b), (K, b))
    w['last_layer.weight_g'] = rng.uniform(ph['weight_g_low'], ph['weight_g_high'], (K, 1))
    return {k: f32(a) for k, a in w.items()}


# ----------------------------------------------------------------------------------------------
# Backbone (docs/algorithm.md §1), head (§2), evaluation features (§8.1). Functional: P maps state_dict names to
# tensors of the working dtype (float32, or float64 for the re-computations).

def cubic_weight(x, A=-0.75):
    x = abs(x)
    if x <= 1:
        return (A + 2) * x ** 3 - (A + 3) * x ** 2 + 1
    if x < 2:
        return A * x ** 3 - 5 * A * x ** 2 + 8 * A * x - 4 * A
    return 0.0


def bicubic_matrix(g_out, g0):
    """[g_out, g0] float64 map of docs/algorithm.md §1.5 along one axis: scale factor (g_out + 0.1)/g0, taps clamped."""
    sigma = (g_out + 0.1) / g0
    assert math.floor(g0 * sigma) == g_out
    m = np.zeros((g_out, g0))
    for o in range(g_out):
        src = (o + 0.5) / sigma - 0.5
        i0 = math.floor(src)
        tt = src - i0
        for tap, wgt in zip((i0 - 1, i0, i0 + 1, i0 + 2), (cubic_weight(1 + tt), cubic_weight(tt), cubic_weight(1 - tt), cubic_weight(2 - tt))):
            m[o, min(max(tap, 0), g0 - 1)] += wgt
    return m


def pos_embed_for(pos, gh, gw, square, opts=None):
    """docs/algorithm.md §1.5: pos_embed as is for exactly g0² patches of a square input, else [cls] row + resized grid."""
    opts = opts or {}
    n_pos, D = pos.shape[1] - 1, pos.shape[2]
    g0 = int(round(math.sqrt(n_pos)))
    if gh * gw == n_pos and square:
        return pos
    grid = pos[0, 1:].reshape(g0, g0, D)
    if opts.get('pos_mode') in ('exact', 'bilinear'):  # sensitivity variants only
        mode = 'bicubic' if opts['pos_mode'] == 'exact' else 'bilinear'
        out = F.interpolate(grid.permute(2, 0, 1)[None], size=(gh, gw), mode=mode, align_corners=False)[0].permute(1, 2, 0)
    else:
        my, mx = t(bicubic_matrix(gh, g0), pos.dtype), t(bicubic_matrix(gw, g0), pos.dtype)
        out = torch.einsum('yi,ijd,xj->yxd', my, grid, mx)
    return torch.cat([pos[:, :1], out.reshape(1, gh * gw, D)], 1)


def layer_norm(x, w, b, eps, opts):
    if opts.get('ln_unbiased'):
        mu = x.mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(x.var(-1, unbiased=True, keepdim=True) + eps) * w + b
    return F.layer_norm(x, (x.shape[-1],), w, b, opts.get('ln_eps', eps))


def gelu(x, opts=None):
    return F.gelu(x, approximate='tanh') if (opts or {}).get('gelu_tanh') else F.gelu(x)


def backbone_forward(P, x, v, masks=None, opts=None):
    """docs/algorithm.md §1.2-§1.8: all tokens after the final LayerNorm [n, 1+Np, D] and the last block's attention [n, h, T, T]."""
    opts = opts or {}
    p, D, h, eps = v['patch_size'], v['embed_dim'], v['num_heads'], v.get('ln_eps', 1e-6)
    dh = D // h
    n, _, H, W = x.shape
    gh, gw = H // p, W // p
    x = F.conv2d(x, P['patch_embed.proj.weight'], P['patch_embed.proj.bias'], stride=p).flatten(2).transpose(1, 2)
    if masks is not None:
        x = torch.where(masks.reshape(n, gh * gw, 1), P['masked_embed'].reshape(1, 1, D), x)
    x = torch.cat([P['cls_token'].expand(n, 1, D), x], 1)
    x = x + pos_embed_for(P['pos_embed'], gh, gw, H == W, opts)
    T = x.shape[1]
    scale = (D if opts.get('scale_D') else dh) ** -0.5
    attn = None
    for l in range(v['depth']):
        b = f'blocks.{l}.'
        y = layer_norm(x, P[b + 'norm1.weight'], P[b + 'norm1.bias'], eps, opts)
        qkv = F.linear(y, P[b + 'attn.qkv.weight'], P[b + 'attn.qkv.bias']).reshape(n, T, 3, h, dh).permute(2, 0, 3, 1, 4)
        q, k, val = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * scale).softmax(-1)
        o = (attn @ val).transpose(1, 2).reshape(n, T, D)
        x = x + F.linear(o, P[b + 'attn.proj.weight'], P[b + 'attn.proj.bias'])
        y = layer_norm(x, P[b + 'norm2.weight'], P[b + 'norm2.bias'], eps, opts)
        x = x + F.linear(gelu(F.linear(y, P[b + 'mlp.fc1.weight'], P[b + 'mlp.fc1.bias']), opts), P[b + 'mlp.fc2.weight'], P[b + 'mlp.fc2.bias'])
    return layer_norm(x, P['norm.weight'], P['norm.bias'], eps, opts), attn


def head_forward(P, x):
    """docs/algorithm.md §2.1-§2.2: MLP, L2 normalisation (eps 1e-12), weight-normalised last layer W = g·v/‖v‖ (shared)."""
    x = gelu(F.linear(x, P['mlp.0.weight'], P['mlp.0.bias']))
    x = gelu(F.linear(x, P['mlp.2.weight'], P['mlp.2.bias']))
    x = F.normalize(F.linear(x, P['mlp.4.weight'], P['mlp.4.bias']), dim=-1, p=2, eps=1e-12)
    v, g = P['last_layer.weight_v'], P['last_layer.weight_g']
    return F.linear(x, v * (g / v.norm(dim=1, keepdim=True)))


def cls_attention(attn):
    return attn.mean(1)[:, 0, 1:]


def eval_features(tokens, attn):
    """docs/algorithm.md §8.1: [z_cls/‖z_cls‖, z_w/‖z_w‖], z_w the [cls]-attention-weighted mean of the patch tokens."""
    w = cls_attention(attn)
    w = w / w.sum(-1, keepdim=True)
    zw = (w.unsqueeze(-1) * tokens[:, 1:]).sum(1)
    return torch.cat([F.normalize(tokens[:, 0], dim=-1), F.normalize(zw, dim=-1)], -1)


def sub(P, prefix):
    return {k[len(prefix):]: v for k, v in P.items() if k.startswith(prefix)}


# ----------------------------------------------------------------------------------------------
# Block masks (docs/algorithm.md §4.3).

def block_mask(rng, gh, gw, ratio):
    mask = np.zeros((gh, gw), dtype=bool)
    target = ratio * gh * gw
    count = 0
    log_aspect = (math.log(0.3), math.log(1 / 0.3))
    while count < target:
        budget = target - count
        added = 0
        for _ in range(10):
            min_area = (min(gh, gw) // 3) ** 2
            area = min_area + (budget - min_area) * rng.random()  # Python's uniform: also for budget < min_area (docs/algorithm.md §11.18)
            a = math.exp(rng.uniform(*log_aspect))
            bh, bw = int(round(math.sqrt(area * a))), int(round(math.sqrt(area / a)))
            if bw < gw and bh < gh:
                top, left = int(rng.integers(0, gh - bh + 1)), int(rng.integers(0, gw - bw + 1))
                new = bh * bw - int(mask[top:top + bh, left:left + bw].sum())
                if 0 < new <= budget:
                    mask[top:top + bh, left:left + bw] = True
                    added = new
            if added > 0:
                break
        if added == 0:
            break
        count += added
    return mask


# ----------------------------------------------------------------------------------------------
# Losses (docs/algorithm.md §5), generic in dtype. Teacher quantities carry no gradient.

def teacher_probs(o, c, temp):
    return F.softmax((o - c) / temp, dim=-1)


def ibot_loss(x, o):
    """docs/algorithm.md §5.3: L_cls over (q < G, v ≠ q, i) and L_mim over masked patches; returns (total, cls, mim)."""
    G, B = o['G'], x['teacher_cls'].shape[0] // o['G']
    tp = teacher_probs(x['teacher_cls'], o['center'], o['teacher_temp']).chunk(G)
    sl = F.log_softmax(torch.cat([x['student_cls'], x['student_local_cls']]) / o['student_temp'], -1).chunk(G + x['student_local_cls'].shape[0] // B)
    cls_terms = [(-(tp[q] * sl[v]).sum(-1)).mean() for q in range(G) for v in range(len(sl)) if v != q]
    loss_cls = sum(cls_terms) / len(cls_terms)
    tpp = teacher_probs(x['teacher_patch'], o['center2'], o['teacher_patch_temp']).chunk(G)
    spp = F.log_softmax(x['student_patch'] / o['student_temp'], -1).chunk(G)
    m = x['masks'].reshape(G * B, -1).to(x['teacher_cls'].dtype).chunk(G)
    mim = [((-(tpp[v] * spp[v]).sum(-1) * m[v]).sum(-1) / m[v].sum(-1).clamp(min=1.0)).mean() for v in range(G)]
    loss_mim = sum(mim) / G
    return o['lambda1'] * loss_cls + o['lambda3'] * loss_mim, loss_cls, loss_mim


def smkd_cls_loss(x, labels, o, local=True):
    """docs/algorithm.md §5.4: global-global cross-image terms over every (q, v) incl. v = q, plus global-local same-image terms."""
    G, B = o['G'], len(labels)
    K = x['teacher_cls'].shape[-1]
    pt = teacher_probs(x['teacher_cls'], o['center'], o['teacher_temp']).reshape(G, B, K)
    ls = F.log_softmax(x['student_cls'] / o['student_temp'], -1).reshape(G, B, K)
    lab = torch.tensor(labels)
    pos = ((lab[:, None] == lab[None, :]) & ~torch.eye(B, dtype=torch.bool)).to(pt.dtype)
    n_pos = int(pos.sum())
    total, count = pt.new_zeros(()), 0
    for q in range(G):
        for v in range(G):
            total = total + (-(pt[q] @ ls[v].T) * pos).sum()
            count += n_pos
    if local and x.get('student_local_cls') is not None:
        ll = F.log_softmax(x['student_local_cls'] / o['student_temp'], -1).reshape(-1, B, K)
        for q in range(G):
            for v in range(ll.shape[0]):
                total = total + (-(pt[q] * ll[v]).sum())
                count += B
    return total / count if count else total  # no term -> 0 (docs/algorithm.md §11.6)


def label_groups(labels):
    groups = {}
    for i, y in enumerate(labels):
        groups.setdefault(int(y), []).append(i)
    return [groups[k] for k in sorted(groups)]


def normalized_features(feat, G, B):
    return F.normalize(feat, dim=-1, p=2, eps=1e-12).reshape(G, B, feat.shape[1], feat.shape[2])


def match_all(s_feat, t_feat, G, B):
    """out.match [s, t, x, y, j] = argmax_n <f_s[s,x,n], f_t[t,y,j]> over all pairs; and the top-2 margins."""
    fs, ft = normalized_features(s_feat, G, B), normalized_features(t_feat, G, B)
    sim = torch.einsum('tyjc,sxnc->stxyjn', ft, fs)
    top = sim.topk(2, dim=-1).values
    return sim.argmax(-1), (top[..., 0] - top[..., 1])


def match_valid(labels, G):
    B = len(labels)
    lab = np.asarray(labels)
    same = (lab[:, None] == lab[None, :]) & ~np.eye(B, dtype=bool)
    diff_view = ~np.eye(G, dtype=bool)
    return diff_view[:, :, None, None] & same[None, None]


def smkd_patch_loss(x, labels, o, match, weighted):
    """docs/algorithm.md §5.5 (our fixed mode): mean over (s, t, I, y) of the matched cross-image terms; 0 if none."""
    G, B = o['G'], len(labels)
    Np, K = x['teacher_patch'].shape[1], x['teacher_patch'].shape[2]
    pt = teacher_probs(x['teacher_patch'], o['center2'], o['teacher_patch_temp']).reshape(G, B, Np, K)
    ls = F.log_softmax(x['student_patch'] / o['student_temp'], -1).reshape(G, B, Np, K)
    a = x['teacher_cls_attn'] / x['teacher_cls_attn'].sum(-1, keepdim=True) if weighted else None
    a = a.reshape(G, B, Np) if weighted else None
    contribs = []
    for s in range(G):
        for tv in range(G):
            if s == tv:
                continue
            for grp in label_groups(labels):
                k = len(grp)
                if k < 2:
                    continue
                for y in grp:
                    acc = 0
                    for xi in grp:
                        if xi == y:
                            continue
                        ell = -(pt[tv, y] * ls[s, xi][match[s, tv, xi, y]]).sum(-1)  # [Np] over teacher patches j
                        acc = acc + ((a[tv, y] * ell).sum() if weighted else ell.sum())
                    contribs.append(acc / (k - 1) if weighted else acc / ((k - 1) * Np))
    return sum(contribs) / len(contribs) if contribs else x['teacher_patch'].new_zeros(())


def ref_patch_decisions(x, labels, G):
    """docs/algorithm.md §5.6 step 2 for every (s, t, group): matches [a, b, j] from the component sums, and the gaps."""
    B = len(labels)
    fs, ft = normalized_features(x['student_feat'], G, B), normalized_features(x['teacher_feat'], G, B)
    ss, st = fs.sum(-1), ft.sum(-1)  # [G, B, Np]
    out = {}
    for s in range(G):
        for tv in range(G):
            if s == tv:
                continue
            for grp in label_groups(labels):
                sim = torch.einsum('aj,bn->abjn', st[tv, grp], ss[s, grp])
                top = sim.topk(2, dim=-1).values if sim.shape[-1] > 1 else None
                out[(s, tv, tuple(grp))] = (sim.argmax(-1), None if top is None else top[..., 0] - top[..., 1])
    return out


def ref_patch_loss(x, labels, o, weighted, decisions=None):
    """docs/algorithm.md §5.6 reference-code mode (parity only): component-sum 'similarity', student side from g_0, targets from view s."""
    G, B = o['G'], len(labels)
    Np, K = x['teacher_patch'].shape[1], x['teacher_patch'].shape[2]
    pt = teacher_probs(x['teacher_patch'], o['center2'], o['teacher_patch_temp']).reshape(G, B, Np, K)
    ls = F.log_softmax(x['student_patch'] / o['student_temp'], -1).reshape(G, B, Np, K)
    aw = (x['teacher_cls_attn'] / x['teacher_cls_attn'].sum(-1, keepdim=True)).reshape(G, B, Np)
    decisions = decisions or ref_patch_decisions(x, labels, G)
    total, count = x['teacher_patch'].new_zeros(()), 0
    for (s, tv, grp), (match, _) in decisions.items():
        k = len(grp)
        for a in range(k):
            # ell[b, j] = H(P_t[s, g_b, j], log P_s[s, g_0, match[a, b, j]])
            ell = torch.stack([-(pt[s, grp[b]] * ls[s, grp[0]][match[a, b]]).sum(-1) for b in range(k)])
            if weighted:
                total = total + (aw[tv, list(grp)] * ell).sum()
                count += 1
            else:
                ell = ell.clone()
                ell[a] = 0
                if k >= 2:
                    total = total + ell.sum() / ((k - 1) * Np)
                    count += 1
    return total / count


def update_centers(c, c2, teacher_cls, teacher_patch, m):
    """docs/algorithm.md §5.8 in the reference code's form: c·m + (sum / n)·(1 − m), c' from the per-image patch means."""
    bc = teacher_cls.sum(0, keepdim=True) / teacher_cls.shape[0]
    pc = teacher_patch.mean(1).sum(0, keepdim=True) / teacher_patch.shape[0]
    return c * m + bc * (1 - m), c2 * m + pc * (1 - m)


# ----------------------------------------------------------------------------------------------
# Schedules (docs/algorithm.md §5.2, §6, §7.3) as the reference code's numpy code, and the optimiser (§7.1-§7.6).

def cosine_scheduler(base, final, epochs, niter, warmup_epochs=0, start_warmup=0.0):
    warm = np.array([])
    wi = warmup_epochs * niter
    if warmup_epochs > 0:
        warm = np.linspace(start_warmup, base, wi)
    iters = np.arange(epochs * niter - wi)
    sched = final + 0.5 * (base - final) * (1 + np.cos(np.pi * iters / len(iters)))
    return np.concatenate((warm, sched))


def temp_schedule(warm, final, warm_epochs, epochs, start_epoch=0):
    """docs/algorithm.md §5.2 with the reference code's linspace (W = 1 gives [warm], ambiguity 1) and pred_start_epoch."""
    return np.concatenate((np.ones(start_epoch) * warm, np.linspace(warm, final, warm_epochs),
                           np.ones(epochs - warm_epochs - start_epoch) * final))


def schedules_of(s):
    e, I = s['epochs'], s['iters_per_epoch']
    pw, pf = s.get('warmup_teacher_patch_temp', s['warmup_teacher_temp']), s.get('teacher_patch_temp', s['teacher_temp'])
    return {
        'lr': cosine_scheduler(s['lr'], s['min_lr'], e, I, s['warmup_epochs']),
        'weight_decay': cosine_scheduler(s['weight_decay'], s['weight_decay_end'], e, I),
        'momentum': cosine_scheduler(s['momentum_teacher'], 1.0, e, I),
        'teacher_temp': temp_schedule(s['warmup_teacher_temp'], s['teacher_temp'], s['warmup_teacher_temp_epochs'], e),
        'teacher_patch_temp': temp_schedule(pw, pf, s['warmup_teacher_temp_epochs'], e, s['pred_start_epoch']),
    }


def is_decayed(name, shape):
    """docs/algorithm.md §7.1 group 0: not a bias and at least 2-D."""
    return not name.endswith('.bias') and len(shape) > 1


class Optimiser:
    """The reference code's optimiser around torch.optim.AdamW: two groups, per-tensor clipping, last-layer freezing, EMA."""

    def __init__(self, params, state=None):
        self.names = sorted(params)
        self.p = {n: torch.nn.Parameter(t(params[n])) for n in self.names}
        decay = [self.p[n] for n in self.names if is_decayed(n, params[n].shape)]
        plain = [self.p[n] for n in self.names if not is_decayed(n, params[n].shape)]
        self.opt = torch.optim.AdamW([{'params': decay}, {'params': plain, 'weight_decay': 0.0}])
        for n, (step, m, v) in (state or {}).items():
            self.opt.state[self.p[n]] = {'step': torch.tensor(float(step)), 'exp_avg': t(m), 'exp_avg_sq': t(v)}

    def step(self, grads, clip, frozen, lr, wd):
        """grads: name -> array (absent = no gradient). Returns the clip factors of the tensors with a gradient."""
        for n in self.names:
            self.p[n].grad = t(grads[n]) if n in grads else None
        return self.update(clip, frozen, lr, wd)

    def update(self, clip, frozen, lr, wd):
        """step() on the gradients the parameters already hold (after a backward through self.p): clip, freeze, AdamW."""
        scales = {}
        for n in self.names:  # docs/algorithm.md §7.5, before freezing (as the reference code)
            g = self.p[n].grad
            if g is None:
                continue
            coef = clip / (g.norm(2) + 1e-6)
            if coef < 1:
                g.mul_(coef)
            scales[n] = np.float32(coef.item() if coef < 1 else 1.0)
        for n in self.names:  # docs/algorithm.md §7.6
            if frozen(n):
                self.p[n].grad = None
        for i, group in enumerate(self.opt.param_groups):
            group['lr'] = lr
            if i == 0:
                group['weight_decay'] = wd
        self.opt.step()
        return scales

    def params(self):
        return {n: self.p[n].detach().numpy().copy() for n in self.names}

    def state(self):
        out = {}
        for n in self.names:
            s = self.opt.state.get(self.p[n])
            out[n] = (int(s['step'].item()), s['exp_avg'].numpy().copy(), s['exp_avg_sq'].numpy().copy()) if s else None
        return out


def ema_(teacher, student, m):
    """docs/algorithm.md §6 in place on tensors: θ_t ← m·θ_t + (1 − m)·θ_s, as the reference code's mul_/add_ in float32."""
    with torch.no_grad():
        for n, tt in teacher.items():
            tt.mul_(m).add_((1 - m) * student[n])


def ema(teacher, student, m):
    """ema_ on arrays: the updated teacher as a new dict of arrays."""
    out = {n: t(v) for n, v in teacher.items()}
    ema_(out, {n: t(student[n]) for n in out}, m)
    return {n: v.numpy() for n, v in out.items()}


# ----------------------------------------------------------------------------------------------
# vit_forward*.safetensors

def compute_vit_forward(T, cfg, dtype=F32, opts=None):
    v = cfg['vit']
    P = {k: t(a, dtype) for k, a in T.items() if not k.startswith(('in.', 'out.'))}
    out = {}
    for name in sorted(cfg['sets']):
        x = t(T[f'in.{name}.images'], dtype)
        tok, attn = backbone_forward(P, x, v, opts=opts)
        out[f'out.{name}.tokens'] = tok
        out[f'out.{name}.cls_attn'] = cls_attention(attn)
        out[f'out.{name}.eval_features'] = eval_features(tok, attn)
        if name in cfg.get('full_attention_for', []):
            out[f'out.{name}.attn'] = attn
        H, W = x.shape[2:]
        gh, gw = H // v['patch_size'], W // v['patch_size']
        g0 = v['img_size'] // v['patch_size']
        if not (gh * gw == g0 * g0 and H == W):
            out[f'out.{name}.pos_embed'] = pos_embed_for(P['pos_embed'], gh, gw, False, opts)
        if f'in.{name}.masks' in T:
            tok, attn = backbone_forward(P, x, v, masks=torch.tensor(T[f'in.{name}.masks']), opts=opts)
            out[f'out.{name}_masked.tokens'] = tok
            out[f'out.{name}_masked.cls_attn'] = cls_attention(attn)
    return out


def attention_entropy(T, cfg, name):
    P = {k: t(a) for k, a in T.items() if not k.startswith(('in.', 'out.'))}
    _, attn = backbone_forward(P, t(T[f'in.{name}.images']), cfg['vit'])
    return float(-(attn * attn.clamp_min(1e-30).log()).sum(-1).mean()), math.log(attn.shape[-1])


def make_vit_forward(seed, cfg, full):
    rng = rng_for(seed, cfg['file'])
    v = cfg['vit']
    pert = perturbation(full, cfg)
    T = init_backbone(rng, v, pert)
    p = v['patch_size']
    for name in sorted(cfg['sets']):
        s = cfg['sets'][name]
        H, W = s['hw']
        T[f'in.{name}.images'] = f32(rng.normal(size=(s['n'], 3, H, W)))
        if 'mask_ratios' in s:
            assert len(s['mask_ratios']) == s['n']
            T[f'in.{name}.masks'] = np.stack([block_mask(rng, H // p, W // p, r) for r in s['mask_ratios']])
    out = compute_vit_forward(T, cfg)
    T.update({k: f32(val.detach()) for k, val in out.items()})
    notes = []
    for name in sorted(cfg['sets']):
        ent, uni = attention_entropy(T, cfg, name)
        notes.append(f'{name}: mean last-block attention entropy (uniform = {uni:.3f}): {ent:.3f}')
        if f'in.{name}.masks' in T:
            notes.append(f'{name}: masked patches per crop {[int(m.sum()) for m in T[f"in.{name}.masks"]]}')
    if cfg.get('sensitivity'):
        ref = {k: val for k, val in out.items() if k.endswith('.tokens') and '_masked' not in k}
        scale = max(float(val.abs().max()) for val in ref.values())
        for what, o in (('GELU tanh approximation instead of erf', {'gelu_tanh': True}), ('LayerNorm eps 1e-5 instead of 1e-6', {'ln_eps': 1e-5}),
                        ('LayerNorm with unbiased variance', {'ln_unbiased': True}), ('pos_embed resized to the exact size (no +0.1 scale factor)', {'pos_mode': 'exact'}),
                        ('pos_embed resized bilinearly', {'pos_mode': 'bilinear'}), ('attention scale 1/sqrt(D) instead of 1/sqrt(d_h)', {'scale_D': True})):
            alt = compute_vit_forward(T, cfg, opts=o)
            d = max(float((alt[k] - ref[k]).abs().max()) for k in ref)
            notes.append(f'sensitivity (max abs token change / max abs token): {what}: {d / scale:.1e}')
    notes += f64_table(out, compute_vit_forward(T, cfg, F64))
    meta = {**base_metadata('vit_forward', cfg, seed), 'vit': cfg_json(vit_meta(v)), 'perturbation': cfg_json(pert)}
    return T, meta, notes


def f64_table(out32, out64):
    rows = []
    for k in out32:
        a, b = out32[k].detach().double(), out64[k].detach()
        e = (a - b).abs().max().item()
        rows.append(f'float32 vs float64 {k}: max abs err {e:.1e}, / max abs {e / b.abs().max().item():.1e}, norm-rel {((a - b).norm() / b.norm()).item():.1e}')
    return rows


# ----------------------------------------------------------------------------------------------
# head_forward.safetensors

def compute_head_forward(T, cfg):
    P = {k[5:]: t(a) for k, a in T.items() if k.startswith('head.') and not k.startswith('head.last_layer2.')}
    out = {}
    for k in sorted(T):
        if not (k.startswith('in.') and k.endswith('.tokens')):
            continue
        name = k[3:-7]
        y = head_forward(P, t(T[k]))
        out[f'out.{name}.cls'] = y[:, 0]
        if y.shape[1] > 1 and name in cfg['patch_outputs_for']:
            out[f'out.{name}.patch'] = y[:, 1:]
    return out


def make_head_forward(seed, cfg, full):
    src = next(c for c in full.values() if isinstance(c, dict) and c.get('file') == cfg['tokens_from'])
    vit_tensors, _, _ = make_vit_forward(seed, src, full)
    in_dim = src['vit']['embed_dim']
    rng = rng_for(seed, cfg['file'])
    pert = perturbation(full, cfg)
    H = init_head(rng, in_dim, cfg['head'], pert)
    T = {f'head.{k}': a for k, a in H.items()}
    if cfg.get('write_last_layer2_aliases'):
        for k in ('weight_g', 'weight_v'):
            T[f'head.last_layer2.{k}'] = H[f'last_layer.{k}'].copy()
    for k in sorted(vit_tensors):
        if k.startswith('out.') and k.endswith('.tokens'):
            name = k[4:-7]
            tok = vit_tensors[k]
            T[f'in.{name}.tokens'] = tok if name in cfg['patch_outputs_for'] else tok[:, :1].copy()
    T.update({k: f32(val.detach()) for k, val in compute_head_forward(T, cfg).items()})
    meta = {**base_metadata('head_forward', cfg, seed), 'head': cfg_json(head_meta(cfg['head'], in_dim)), 'perturbation': cfg_json(pert)}
    return T, meta, []


# ----------------------------------------------------------------------------------------------
# loss_phase1.safetensors

def loss_scalars(T):
    o = {k[3:]: float(T[k]) for k in T if k.startswith('in.') and T[k].ndim == 0 and T[k].dtype == np.float64}
    return o


def compute_loss_phase1(T, cfg, dtype=F32):
    x = {k: t(T[f'in.{k}'], dtype) for k in ('teacher_cls', 'student_cls', 'student_local_cls', 'teacher_patch', 'student_patch')}
    for k in ('student_cls', 'student_local_cls', 'student_patch'):
        x[k].requires_grad_(True)
    x['masks'] = torch.tensor(T['in.masks'])
    o = {**loss_scalars(T), 'G': cfg['G'], 'center': t(T['in.center'], dtype), 'center2': t(T['in.center2'], dtype)}
    total, cls, mim = ibot_loss(x, o)
    total.backward()
    c, c2 = update_centers(o['center'], o['center2'], x['teacher_cls'], x['teacher_patch'], o['center_momentum'])
    return {'out.loss': total, 'out.loss_cls': cls, 'out.loss_mim': mim, 'out.grad.student_cls': x['student_cls'].grad,
            'out.grad.student_local_cls': x['student_local_cls'].grad, 'out.grad.student_patch': x['student_patch'].grad,
            'out.center': c, 'out.center2': c2}


def head_output_draws(rng, cfg, n_global, n_local, Np):
    K = cfg['K']
    return {
        'in.teacher_cls': f32(rng.normal(0, cfg['teacher_logit_std'], (n_global, K))),
        'in.student_cls': f32(rng.normal(0, cfg['student_logit_std'], (n_global, K))),
        'in.student_local_cls': f32(rng.normal(0, cfg['student_logit_std'], (n_local, K))),
        'in.teacher_patch': f32(rng.normal(0, cfg['teacher_logit_std'], (n_global, Np, K))),
        'in.student_patch': f32(rng.normal(0, cfg['student_logit_std'], (n_global, Np, K))),
        'in.center': f32(rng.normal(0, cfg['center_std'], (1, K))),
        'in.center2': f32(rng.normal(0, cfg['center_std'], (1, 1, K))),
        'in.student_temp': scalar64(cfg['student_temp']),
        'in.teacher_temp': scalar64(cfg['teacher_temp']),
        'in.teacher_patch_temp': scalar64(cfg['teacher_patch_temp']),
        'in.center_momentum': scalar64(cfg['center_momentum']),
        'in.lambda1': scalar64(cfg['lambda1']),
    }


def finish_loss_file(T, out32, out64, f64_keys):
    T.update({k: f32(v.detach()) for k, v in out32.items()})
    T.update({f'out.f64.{k[4:]}': scalar64(out64[k].item()) for k in f64_keys})
    return [f'float32 vs float64 {k}: {abs(out32[k].item() - out64[k].item()) / abs(out64[k].item()):.1e} relative' for k in f64_keys]


def make_loss_phase1(seed, cfg, full):
    rng = rng_for(seed, cfg['file'])
    G, B, L = cfg['G'], cfg['B'], cfg['L']
    gh, gw = cfg['grid']
    T = head_output_draws(rng, cfg, G * B, L * B, gh * gw)
    T['in.lambda3'] = scalar64(cfg['lambda3'])
    assert len(cfg['mask_ratios']) == G * B
    T['in.masks'] = np.stack([block_mask(rng, gh, gw, r) for r in cfg['mask_ratios']])
    out32, out64 = compute_loss_phase1(T, cfg), compute_loss_phase1(T, cfg, F64)
    notes = [f'masked patches per crop: {[int(m.sum()) for m in T["in.masks"]]}']
    notes += finish_loss_file(T, out32, out64, ['out.loss', 'out.loss_cls', 'out.loss_mim'])
    notes += f64_table({k: v for k, v in out32.items() if 'grad' in k}, {k: v for k, v in out64.items() if 'grad' in k})
    return T, base_metadata('loss_phase1', cfg, seed), notes


# ----------------------------------------------------------------------------------------------
# loss_phase2.safetensors

def compute_loss_phase2(T, cfg, dtype=F32):
    labels = [int(v) for v in T['in.labels']]
    G = T['in.teacher_cls'].shape[0] // len(labels)

    def inputs():
        x = {k: t(T[f'in.{k}'], dtype) for k in ('teacher_cls', 'student_cls', 'student_local_cls', 'teacher_patch', 'student_patch',
                                                   'teacher_feat', 'student_feat', 'teacher_cls_attn')}
        for k in ('student_cls', 'student_local_cls', 'student_patch'):
            x[k].requires_grad_(True)
        return x

    o = {**loss_scalars(T), 'G': G, 'center': t(T['in.center'], dtype), 'center2': t(T['in.center2'], dtype)}
    out = {}
    x = inputs()
    match, _ = match_all(x['student_feat'], x['teacher_feat'], G, len(labels))
    cls = smkd_cls_loss(x, labels, o)
    cls.backward()
    out.update({'out.loss_cls': cls, 'out.grad.student_cls': x['student_cls'].grad, 'out.grad.student_local_cls': x['student_local_cls'].grad})
    for variant in ('uniform', 'weighted'):
        x = inputs()
        lp = smkd_patch_loss(x, labels, o, match, variant == 'weighted')
        lp.backward()
        out[f'out.loss_patch_{variant}'] = lp
        out[f'out.grad.student_patch_{variant}'] = x['student_patch'].grad
    out['out.loss'] = o['lambda1'] * out['out.loss_cls'] + o['lambda2'] * out['out.loss_patch_uniform']
    x = inputs()
    decisions = ref_patch_decisions(x, labels, G)
    for variant in ('uniform', 'weighted'):
        out[f'out.loss_patch_ref_{variant}'] = ref_patch_loss(x, labels, o, variant == 'weighted', decisions)
    out['out.match'] = match
    out['out.match_valid'] = torch.tensor(match_valid(labels, G))
    out['out.patch_weights'] = x['teacher_cls_attn'] / x['teacher_cls_attn'].sum(-1, keepdim=True)
    out['out.center'], out['out.center2'] = update_centers(o['center'], o['center2'], x['teacher_cls'], x['teacher_patch'], o['center_momentum'])
    single = [int(v) for v in T['in.singletons.labels']]
    out['out.singletons.loss_cls'] = smkd_cls_loss(x, single, o)
    for variant in ('uniform', 'weighted'):
        out[f'out.singletons.loss_patch_{variant}'] = smkd_patch_loss(x, single, o, match, variant == 'weighted')
    out['out.singletons_no_local.loss_cls'] = smkd_cls_loss(x, single, o, local=False)
    return out


def phase2_margins(T, G, labels):
    x = {k: t(T[f'in.{k}'], F64) for k in ('student_feat', 'teacher_feat')}
    _, margin = match_all(x['student_feat'], x['teacher_feat'], G, len(labels))
    gaps = [g.min().item() for _, g in ref_patch_decisions(x, labels, G).values() if g is not None]
    return margin.min().item(), min(gaps)


def make_loss_phase2(seed, cfg, full):
    rng = rng_for(seed, cfg['file'])
    G, L, labels = cfg['G'], cfg['L'], cfg['labels']
    B = len(labels)
    gh, gw = cfg['grid']
    Np, D = gh * gw, cfg['feat_dim']
    T = head_output_draws(rng, cfg, G * B, L * B, Np)
    T['in.lambda2'] = scalar64(cfg['lambda2'])
    T['in.labels'] = np.array(labels, dtype=np.int64)
    T['in.singletons.labels'] = np.arange(B, dtype=np.int64) * 3 + 1
    logits = rng.normal(size=(G * B, 1 + Np))
    att = np.exp(logits - logits.max(-1, keepdims=True))
    T['in.teacher_cls_attn'] = f32((att / att.sum(-1, keepdims=True))[:, 1:])
    redraws = 0
    while True:
        T['in.teacher_feat'] = f32(rng.normal(size=(G * B, Np, D)))
        T['in.student_feat'] = f32(rng.normal(size=(G * B, Np, D)))
        spec_margin, ref_gap = phase2_margins(T, G, labels)
        if spec_margin > cfg['min_match_margin'] and ref_gap > cfg['min_match_margin']:
            break
        redraws += 1
    out32, out64 = compute_loss_phase2(T, cfg), compute_loss_phase2(T, cfg, F64)
    assert torch.equal(out32['out.match'], out64['out.match'])
    f64_keys = ['out.loss', 'out.loss_cls'] + [f'out.loss_patch_{m}{v}' for m in ('', 'ref_') for v in ('uniform', 'weighted')]
    n_pos = int(((np.array(labels)[:, None] == np.array(labels)[None]) & ~np.eye(B, dtype=bool)).sum())
    notes = [f'feature redraws: {redraws}', f'min match margin of our cosine (all pairs): {spec_margin:.3e}', f'min gap of the reference-code mode: {ref_gap:.3e}',
             f'n_pos (ordered same-class pairs): {n_pos}; L_cls divides by {G * G * n_pos + G * L * B}',
             f'groups: {label_groups(labels)}']
    notes += finish_loss_file(T, {k: v for k, v in out32.items() if k not in ('out.match', 'out.match_valid')}, out64, f64_keys)
    T['out.match'] = out32['out.match'].numpy().astype(np.int64)
    T['out.match_valid'] = out32['out.match_valid'].numpy()
    for k in ('out.singletons.loss_patch_uniform', 'out.singletons.loss_patch_weighted', 'out.singletons_no_local.loss_cls'):
        assert T[k] == 0, k
    return T, base_metadata('loss_phase2', cfg, seed), notes


# ----------------------------------------------------------------------------------------------
# train_step.safetensors

def derived_schedule(s):
    sch = schedules_of(s)
    it = s['iteration']
    epoch = it // s['iters_per_epoch']
    return {'epoch': epoch, 'lr': float(sch['lr'][it]), 'momentum': float(sch['momentum'][it]),
            'teacher_patch_temp': float(sch['teacher_patch_temp'][epoch]), 'teacher_temp': float(sch['teacher_temp'][epoch]),
            'weight_decay': float(sch['weight_decay'][it])}


def train_forward(T, vit, dtype=F32):
    """docs/algorithm.md §0.3 steps 3-6 of a phase-2 step in `dtype`: loss terms, student gradients, centres, matches."""
    labels = [int(v) for v in T['in.labels']]
    B = len(labels)
    S = {k[8:]: t(a, dtype).requires_grad_(True) for k, a in T.items() if k.startswith('student.')}
    Tc = {k[8:]: t(a, dtype) for k, a in T.items() if k.startswith('teacher.')}
    sc = loss_scalars(T)
    globals_, locals_ = t(T['in.global_crops'], dtype), t(T['in.local_crops'], dtype)
    G, L = globals_.shape[0] // B, locals_.shape[0] // B
    with torch.no_grad():
        tt, tattn = backbone_forward(sub(Tc, 'backbone.'), globals_, vit)
        th = head_forward(sub(Tc, 'head.'), tt)
    st, _ = backbone_forward(sub(S, 'backbone.'), globals_, vit, masks=torch.tensor(T['in.masks']))
    sh = head_forward(sub(S, 'head.'), st)
    lt, _ = backbone_forward(sub(S, 'backbone.'), locals_, vit)
    sl = head_forward(sub(S, 'head.'), lt[:, 0])
    x = {'teacher_cls': th[:, 0], 'teacher_patch': th[:, 1:], 'student_cls': sh[:, 0], 'student_patch': sh[:, 1:],
         'student_local_cls': sl if L > 0 else None, 'teacher_feat': tt[:, 1:], 'student_feat': st[:, 1:].detach(),
         'teacher_cls_attn': cls_attention(tattn)}
    o = {**sc, 'G': G, 'center': t(T['in.center'], dtype), 'center2': t(T['in.center2'], dtype)}
    match, margin = match_all(x['student_feat'], x['teacher_feat'], G, B)
    cls = smkd_cls_loss(x, labels, o)
    patch = smkd_patch_loss(x, labels, o, match, False)
    total = o['lambda1'] * cls + o['lambda2'] * patch
    if o.get('lambda3', 0) > 0:
        total = total + o['lambda3'] * ibot_loss({**x, 'masks': torch.tensor(T['in.masks'])}, {**o, 'lambda1': 0.0})[2]
    total.backward()
    c, c2 = update_centers(o['center'], o['center2'], x['teacher_cls'], x['teacher_patch'], o['center_momentum'])
    valid = torch.tensor(match_valid(labels, G))
    return {'out.loss': total, 'out.loss_cls': cls, 'out.loss_patch': patch, 'out.center': c, 'out.center2': c2,
            'out.student_cls': x['student_cls'], 'out.student_local_cls': x['student_local_cls'], 'out.teacher_cls': x['teacher_cls'],
            'out.match': match, **{f'out.grad.{n}': p.grad for n, p in S.items()}}, margin, valid


def train_update(T, grads):
    """docs/algorithm.md §7.4 steps 4-7 from a fresh AdamW state: clip, freeze, AdamW, EMA. grads: name -> array."""
    student = {k[8:]: a for k, a in T.items() if k.startswith('student.')}
    teacher = {k[8:]: a for k, a in T.items() if k.startswith('teacher.')}
    frozen_epoch = int(T['in.epoch']) < int(T['in.freeze_last_layer'])
    opt = Optimiser(student)
    scales = opt.step(grads, float(T['in.clip_grad']), lambda n: frozen_epoch and 'last_layer' in n, float(T['in.lr']), float(T['in.weight_decay']))
    new = opt.params()
    out = {f'out.clip_scale.{n}': np.array(v, dtype=np.float32) for n, v in scales.items()}
    out.update({f'out.student.{n}': v for n, v in new.items()})
    out.update({f'out.teacher.{n}': v for n, v in ema(teacher, new, float(T['in.momentum'])).items()})
    return out


def make_train_step(seed, cfg, full):
    rng = rng_for(seed, cfg['file'])
    v = {**cfg['vit'], 'ln_eps': 1e-6}
    pert = perturbation(full, cfg)
    student = {f'backbone.{k}': a for k, a in init_backbone(rng, v, pert).items()}
    student.update({f'head.{k}': a for k, a in init_head(rng, v['embed_dim'], cfg['head'], pert).items()})
    assert not cfg['head']['norm_last_layer'], 'this generator trains weight_g (norm_last_layer = false)'
    teacher = {n: f32(a + cfg['teacher_offset_rel'] * np.sqrt(np.mean(a.astype(np.float64) ** 2)) * rng.normal(size=a.shape))
               for n, a in student.items() if n != 'backbone.masked_embed'}
    s = cfg['schedule']
    d = derived_schedule(s)
    labels = cfg['labels']
    G, L, B = cfg['G'], cfg['L'], len(labels)
    p = v['patch_size']
    T = {**{f'student.{n}': a for n, a in student.items()}, **{f'teacher.{n}': a for n, a in teacher.items()}}
    K = cfg['head']['out_dim']
    T.update({
        'in.center': f32(rng.normal(0, cfg['center_std'], (1, K))), 'in.center2': f32(rng.normal(0, cfg['center_std'], (1, 1, K))),
        'in.center_momentum': scalar64(cfg['center_momentum']), 'in.clip_grad': scalar64(cfg['clip_grad']),
        'in.epoch': scalar_i64(d['epoch']), 'in.freeze_last_layer': scalar_i64(s['freeze_last_layer']), 'in.iteration': scalar_i64(s['iteration']),
        'in.labels': np.array(labels, dtype=np.int64), 'in.lambda1': scalar64(cfg['lambda1']), 'in.lambda2': scalar64(cfg['lambda2']),
        'in.lambda3': scalar64(cfg['lambda3']), 'in.lr': scalar64(d['lr']), 'in.momentum': scalar64(d['momentum']),
        'in.student_temp': scalar64(cfg['student_temp']), 'in.teacher_temp': scalar64(d['teacher_temp']),
        'in.teacher_patch_temp': scalar64(d['teacher_patch_temp']), 'in.weight_decay': scalar64(d['weight_decay']),
    })
    gh, gw = cfg['global_hw'][0] // p, cfg['global_hw'][1] // p
    assert len(cfg['mask_ratios']) == G * B
    T['in.masks'] = np.stack([block_mask(rng, gh, gw, r) for r in cfg['mask_ratios']])
    redraws = 0
    while True:
        T['in.global_crops'] = f32(rng.normal(size=(G * B, 3, *cfg['global_hw'])))
        T['in.local_crops'] = f32(rng.normal(size=(L * B, 3, *cfg['local_hw'])))
        out64, margin64, valid = train_forward(T, v, F64)
        out32, _, _ = train_forward(T, v)
        m = margin64[valid].min().item()
        if m > cfg['min_match_margin'] and torch.equal(out32['out.match'][valid], out64['out.match'][valid]):
            break
        redraws += 1
    T.update({k: (val.numpy().astype(np.int64) if k == 'out.match' else f32(val.detach())) for k, val in out32.items()})
    for k in ('out.loss', 'out.loss_cls', 'out.loss_patch'):
        T[f'out.f64.{k[4:]}'] = scalar64(out64[k].item())
    grads = {k[9:]: T[k] for k in T if k.startswith('out.grad.')}
    T.update(train_update(T, grads))
    g32 = {k: torch.tensor(T[k]).double() for k in T if k.startswith('out.grad.')}
    worst = max(((g32[k] - out64[k]).norm() / out64[k].norm()).item() for k in g32 if 'qkv.bias' not in k)
    share = np.mean(np.concatenate([np.abs(T[k]).ravel() >= 1e-5 for k in g32]))
    norms = {k[9:]: float(np.linalg.norm(T[k])) for k in g32}
    clipped = sorted(k[15:] for k in T if k.startswith('out.clip_scale.') and T[k] < 1)
    D = v['embed_dim']
    key_bias = max(float(np.abs(T[f'out.grad.backbone.blocks.{l}.attn.qkv.bias'][D:2 * D]).max()) for l in range(v['depth']))
    notes = [f'image redraws: {redraws}', f'min match margin over the pairs used by the loss (cosine, f64): {m:.3e}',
             f'worst per-tensor gradient error ||g32-g64||/||g64|| (qkv.bias aside): {worst:.2e}',
             f'max |grad| of the key part of qkv.bias (mathematically 0): {key_bias:.2e}',
             f'share of gradient elements with |g| >= 1e-5: {share:.3f}',
             f'tensors clipped: {len(clipped)} of {len(norms)} (grad norms: min {min(norms.values()):.3g}, max {max(norms.values()):.3g}, clip {cfg["clip_grad"]})',
             f'clipped names: {clipped}', f'masked patches per crop: {[int(mm.sum()) for mm in T["in.masks"]]}',
             f'schedule values: {d}', f'last layer frozen: {int(T["in.epoch"]) < int(T["in.freeze_last_layer"])}',
             f'losses: {[float(T[k]) for k in ("out.loss", "out.loss_cls", "out.loss_patch")]}']
    meta = {**base_metadata('train_step', cfg, seed), 'vit': cfg_json(vit_meta(v)), 'head': cfg_json(head_meta(cfg['head'], v['embed_dim'])),
            'derived': cfg_json(d), 'perturbation': cfg_json(pert)}
    return T, meta, notes


# ----------------------------------------------------------------------------------------------
# fewshot_eval.safetensors

def mean_ci95(acc):
    acc = np.asarray(acc, dtype=np.float64)
    return acc.mean(), 1.96 * acc.std() / math.sqrt(len(acc))


def prototype_episodes(features, support, query):
    """docs/algorithm.md §8.3 prototype classifier in float64: predictions [E, N, Q] and the best-minus-second cosine margins."""
    f = torch.tensor(features, dtype=F64)
    proto = f[torch.tensor(support)].mean(2)  # [E, N, D]
    q = f[torch.tensor(query)]  # [E, N, Q, D]
    cos = torch.einsum('enqd,ewd->enqw', F.normalize(q, dim=-1, eps=0.0), F.normalize(proto, dim=-1, eps=0.0))
    top = cos.topk(2, dim=-1).values
    return cos.argmax(-1).numpy().astype(np.int64), (top[..., 0] - top[..., 1]).numpy()


def compute_fewshot(T):
    out = {}
    for k in sorted(T):
        if k.endswith('.support_idx'):
            shot = k[3:-len('.support_idx')]
            pred, _ = prototype_episodes(T['in.features'], T[k], T[f'in.{shot}.query_idx'])
            E, N, Q = pred.shape
            acc = (pred == np.arange(N)[None, :, None]).reshape(E, -1).sum(-1) / (N * Q) * 100
            out[f'out.{shot}.pred'] = pred
            out[f'out.{shot}.acc'] = acc
            out[f'out.{shot}.mean'], out[f'out.{shot}.ci95'] = (scalar64(v) for v in mean_ci95(acc))
    out['out.acc_vector.mean'], out['out.acc_vector.ci95'] = (scalar64(v) for v in mean_ci95(T['in.acc_vector']))
    return out


def make_fewshot_eval(seed, cfg, full):
    rng = rng_for(seed, cfg['file'])
    C, M, dim = cfg['classes'], cfg['per_class'], cfg['dim']
    means = rng.normal(0, cfg['class_mean_std'], (C, dim))
    labels = np.repeat(np.arange(C), M)
    feats = means[labels] + rng.normal(0, cfg['noise_std'], (C * M, dim))
    perm = rng.permutation(C * M)
    T = {'in.features': f32(feats[perm]), 'in.labels': labels[perm].astype(np.int64)}
    rows = {c: np.flatnonzero(T['in.labels'] == c) for c in range(C)}
    N, Q, E = cfg['ways'], cfg['queries'], cfg['episodes']
    notes = []
    for K in cfg['shots']:
        sup, qry, margins = [], [], []
        while len(sup) < E:
            classes = rng.choice(C, N, replace=False)
            picks = [rng.permutation(rows[c])[:K + Q] for c in classes]
            s, q = np.stack([p[:K] for p in picks]), np.stack([p[K:] for p in picks])
            _, margin = prototype_episodes(T['in.features'], s[None], q[None])
            if margin.min() > cfg['min_margin']:
                sup.append(s)
                qry.append(q)
                margins.append(margin.min())
        T[f'in.shot{K}.support_idx'] = np.stack(sup).astype(np.int64)
        T[f'in.shot{K}.query_idx'] = np.stack(qry).astype(np.int64)
    T['in.acc_vector'] = rng.integers(0, N * Q + 1, cfg['acc_vector_len']) / (N * Q) * 100.0
    T.update(compute_fewshot(T))
    for K in cfg['shots']:
        _, margin = prototype_episodes(T['in.features'], T[f'in.shot{K}.support_idx'], T[f'in.shot{K}.query_idx'])
        notes.append(f'{N}-way {K}-shot: mean {float(T[f"out.shot{K}.mean"]):.4f} +- {float(T[f"out.shot{K}.ci95"]):.4f} %, min cosine margin {margin.min():.2e}')
    return T, base_metadata('fewshot_eval', cfg, seed), notes


# ----------------------------------------------------------------------------------------------
# optim_schedules.safetensors

DEFAULT_OPTIM_PARAMS = [
    ['backbone.blocks.0.attn.qkv.bias', [12]], ['backbone.blocks.0.attn.qkv.weight', [12, 4]], ['backbone.blocks.0.norm1.weight', [4]],
    ['backbone.cls_token', [1, 1, 4]], ['backbone.masked_embed', [1, 4]], ['backbone.patch_embed.proj.bias', [4]],
    ['backbone.pos_embed', [1, 5, 4]], ['head.last_layer.weight_g', [3, 1]], ['head.last_layer.weight_v', [3, 4]],
]


def compute_optim_schedules(T, cfg):
    names = sorted(k[9:] for k in T if k.startswith('in.param.'))
    state = {n: (int(T[f'in.step.{n}']), T[f'in.exp_avg.{n}'], T[f'in.exp_avg_sq.{n}']) for n in names}
    opt = Optimiser({n: T[f'in.param.{n}'] for n in names}, state)
    teacher = {k[11:]: T[k] for k in T if k.startswith('in.teacher.')}
    freeze = int(T['in.freeze_last_layer'])
    out = {}
    its = sorted({int(k.split('.')[1][2:]) for k in T if k.startswith('in.it')})
    for it in its:
        pre = f'in.it{it}.'
        epoch = int(T[pre + 'epoch'])
        grads = {n: T[pre + 'grad.' + n] for n in names if pre + 'grad.' + n in T}
        scales = opt.step(grads, float(T['in.clip_grad']), lambda n: epoch < freeze and 'last_layer' in n, float(T[pre + 'lr']), float(T[pre + 'weight_decay']))
        params, st = opt.params(), opt.state()
        teacher = ema(teacher, params, float(T[pre + 'momentum']))
        o = f'out.it{it}.'
        for n in names:
            out[o + 'param.' + n] = params[n]
            out[o + 'step.' + n], out[o + 'exp_avg.' + n], out[o + 'exp_avg_sq.' + n] = st[n]
            out[o + 'step.' + n] = scalar_i64(out[o + 'step.' + n])
        out.update({o + 'clip_scale.' + n: np.array(v, dtype=np.float32) for n, v in scales.items()})
        out.update({o + 'teacher.' + n: v for n, v in teacher.items()})
    for s in cfg['schedules']:
        for q, arr in schedules_of(s).items():
            out[f'out.schedule.{s["name"]}.{q}'] = arr
    return out


def make_optim_schedules(seed, cfg, full):
    rng = rng_for(seed, cfg['file'])
    params = cfg.get('params', DEFAULT_OPTIM_PARAMS)
    T = {'in.clip_grad': scalar64(cfg['clip_grad']), 'in.freeze_last_layer': scalar_i64(cfg['freeze_last_layer'])}
    for name, shape in params:
        T[f'in.param.{name}'] = f32(rng.normal(0, 0.5, shape))
        T[f'in.exp_avg.{name}'] = f32(rng.normal(0, 0.05, shape))
        T[f'in.exp_avg_sq.{name}'] = f32(rng.normal(0, 0.05, shape) ** 2 + 1e-4)
        T[f'in.step.{name}'] = scalar_i64(cfg['initial_step'].get(name, cfg['initial_step']['default']))
        if name != 'backbone.masked_embed':
            T[f'in.teacher.{name}'] = f32(T[f'in.param.{name}'] + 0.1 * rng.normal(size=shape))
    for k, it in enumerate(cfg['iterations']):
        pre = f'in.it{k}.'
        T[pre + 'epoch'] = scalar_i64(it['epoch'])
        T[pre + 'lr'], T[pre + 'momentum'], T[pre + 'weight_decay'] = (scalar64(it[q]) for q in ('lr', 'momentum', 'weight_decay'))
        for name, shape in params:
            if name not in it['absent_grad']:
                # per-tensor scales spread over two decades around clip, so that some tensors are clipped, some not
                T[pre + 'grad.' + name] = f32(rng.normal(size=shape) * cfg['clip_grad'] * 10 ** rng.uniform(-1.2, 0.6) / math.sqrt(np.prod(shape)))
    T.update(compute_optim_schedules(T, cfg))
    notes = []
    for k, it in enumerate(cfg['iterations']):
        clipped = sorted(key.split('clip_scale.')[1] for key in T if key.startswith(f'out.it{k}.clip_scale.') and T[key] < 1)
        notes.append(f'it{k}: epoch {it["epoch"]}, lr {it["lr"]}, wd {it["weight_decay"]}, momentum {it["momentum"]}, no gradient: {it["absent_grad"]}, '
                     f'frozen: {it["epoch"] < cfg["freeze_last_layer"]}, clipped: {clipped}')
    return T, base_metadata('optim_schedules', cfg, seed), notes


# ----------------------------------------------------------------------------------------------
# --check: recompute every out.* of a folder from its own weights and in.* inputs.

class Report:
    def __init__(self, file):
        self.file, self.rows = file, []

    def add(self, key, err, tol, how):
        self.rows.append((key, err, tol, how))

    def rel_max(self, key, got, want, tol):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        assert got.shape == want.shape, f'{self.file} {key}: shape {got.shape} vs {want.shape}'
        scale = np.abs(want).max() if want.size else 0
        err = np.abs(got - want).max() / scale if scale > 0 else np.abs(got - want).max()
        self.add(key, err, tol, 'max|a-b|/max|b|')

    def rel_scalar(self, key, got, want, tol):
        want = float(want)
        self.add(key, abs(float(got) - want) / abs(want) if want != 0 else abs(float(got)), tol, '|a-b|/|b|')

    def grad(self, key, got, want, tol=1e-3):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        norm_rel = np.linalg.norm(got - want) / np.linalg.norm(want)
        max_rel = np.abs(got - want).max() / np.abs(want).max()
        self.add(key, max(norm_rel, max_rel), tol, 'max(norm-rel, max-rel)')

    def exact(self, key, got, want):
        got, want = np.asarray(got), np.asarray(want)
        assert got.shape == want.shape, f'{self.file} {key}: shape {got.shape} vs {want.shape}'
        self.add(key, int((got != want).sum()), 0, 'mismatches')

    def absolute(self, key, got, want, tol):
        self.add(key, float(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)).max()), tol, 'max|a-b|')

    def ok(self):
        return all(err <= tol for _, err, tol, _ in self.rows)  # NaN fails

    def worst(self):
        return max(self.rows, key=lambda r: (r[1] / r[2]) if r[2] > 0 else (math.inf if r[1] > 0 else 0))

    def print(self, verbose):
        print(f'== {self.file}: {len(self.rows)} keys, {"PASS" if self.ok() else "FAIL"}')
        for key, err, tol, how in self.rows:
            bad = not err <= tol
            if verbose or bad:
                print(f'   {"FAIL" if bad else "ok  "} {key}: {err:.2e} (tol {tol:g}, {how})')
        key, err, tol, how = self.worst()
        print(f'   worst (relative to its tolerance): {key}: {err:.2e} (tol {tol:g}, {how})')


def covered(rep, T):
    """Every out.* key of the file must have been compared."""
    seen = {r[0].split(' (')[0] for r in rep.rows}
    missing = sorted(k for k in T if k.startswith('out.') and k not in seen)
    rep.add(f'(out.* keys not recomputed: {missing[:5]})', len(missing), 0, 'count')


def check_vit_forward(T, cfg, rep):
    for k, v in compute_vit_forward(T, cfg).items():
        rep.rel_max(k, v.detach(), T[k], 2e-5)


def check_head_forward(T, cfg, rep):
    for k in ('weight_g', 'weight_v'):
        if f'head.last_layer2.{k}' in T:
            rep.exact(f'head.last_layer2.{k} (alias)', T[f'head.last_layer2.{k}'], T[f'head.last_layer.{k}'])
    for k, v in compute_head_forward(T, cfg).items():
        rep.rel_max(k, v.detach(), T[k], 2e-5)


def check_losses(T, out32, out64, rep, centre_tol=1e-5, loss_tol=1e-5):
    for k, v in out32.items():
        if k not in T:
            continue
        if k in ('out.match', 'out.match_valid'):
            rep.exact(k, v.numpy(), T[k])
        elif k.startswith('out.grad.'):
            rep.grad(k, v, T[k])
        elif k.startswith('out.center'):
            rep.rel_max(k, v.detach(), T[k], centre_tol)
        elif k == 'out.patch_weights':
            rep.rel_max(k, v.detach(), T[k], 2e-5)
        elif v.ndim == 0 and float(T[k]) == 0:
            rep.absolute(k, v.item(), T[k], 0)
        else:
            rep.rel_scalar(k, v.item(), T[k], loss_tol)
    for k in T:
        if k.startswith('out.f64.'):
            rep.rel_scalar(k, out64['out.' + k[8:]].item(), T[k], loss_tol)


def check_loss_phase1(T, cfg, rep):
    check_losses(T, compute_loss_phase1(T, cfg), compute_loss_phase1(T, cfg, F64), rep)


def check_loss_phase2(T, cfg, rep):
    check_losses(T, compute_loss_phase2(T, cfg), compute_loss_phase2(T, cfg, F64), rep)


def check_train_step(T, cfg, rep, meta):
    v = json.loads(meta['vit'])
    out32, margin, valid = train_forward(T, v)
    out64, _, _ = train_forward(T, v, F64)
    for k in ('out.loss', 'out.loss_cls', 'out.loss_patch'):
        rep.rel_scalar(k, out32[k].item(), T[k], 1e-4)
        rep.rel_scalar('out.f64.' + k[4:], out64[k].item(), T['out.f64.' + k[4:]], 1e-4)
    grads = {}
    for k, g in out32.items():
        if k.startswith('out.grad.'):
            grads[k[9:]] = g.numpy()
            if 'attn.qkv.bias' in k:  # the key slice is float noise: judge by the norm (README)
                rep.add(k, np.linalg.norm(g.numpy() - T[k]) / np.linalg.norm(T[k]), 1e-3, 'norm-rel')
            else:
                rep.grad(k, g, T[k])
        elif k == 'out.match':
            m = g.numpy()
            rep.exact(k + ' (pairs used by the loss)', m[valid.numpy()], T[k][valid.numpy()])
            unused = (m != T[k]) & ~valid.numpy()[..., None]
            near_tie = margin.numpy() < 1e-5
            rep.add(k + ' (other pairs, beyond a 1e-5 cosine margin)', int((unused & ~near_tie).sum()), 0, 'mismatches')
        elif k not in ('out.loss', 'out.loss_cls', 'out.loss_patch'):  # centres, head outputs
            rep.rel_max(k, g.detach(), T[k], 1e-4)
    own = train_update(T, grads)
    stored = train_update(T, {k[9:]: T[k] for k in T if k.startswith('out.grad.')})
    lr, m = float(T['in.lr']), float(T['in.momentum'])
    for k in own:
        if k.startswith('out.clip_scale.'):
            rep.rel_scalar(k, own[k], T[k], 1e-3)
            continue
        name = k.split('.', 2)[2]
        want = T[k].astype(np.float64)
        if k.startswith('out.student.'):
            g = np.abs(T['out.grad.' + name] * T['out.clip_scale.' + name])
            tol = np.where(g >= 1e-5, 1e-3 * lr, 2 * lr) + 1e-6 * np.abs(want)
        else:
            tol = 2 * (1 - m) * lr + 1e-6 * np.abs(want)
        rep.add(k, float((np.abs(own[k] - want) / tol).max()), 1.0, 'max |a-b|/bound (README element-wise bound)')
        rep.rel_max(k + ' (from the stored gradients)', stored[k], T[k], 1e-6)


def check_fewshot_eval(T, cfg, rep):
    for k, v in compute_fewshot(T).items():
        if k.endswith('.pred'):
            rep.exact(k, v, T[k])
        else:
            rep.absolute(k, v, T[k], 1e-6)


def check_optim_schedules(T, cfg, rep):
    for k, v in compute_optim_schedules(T, cfg).items():
        if '.step.' in k:
            rep.exact(k, v, T[k])
        elif '.clip_scale.' in k:
            rep.rel_scalar(k, v, T[k], 1e-5)
        elif k.startswith('out.schedule.'):
            rep.add(k, float((np.abs(v - T[k]) / np.maximum(np.abs(T[k]), 1e-300)).max()), 1e-12, 'max |a-b|/|b|')
        else:
            rep.rel_max(k, v, T[k], 1e-6)


def header_bytes(T, meta):
    """The header this writer produces for these tensors and metadata."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'header.safetensors')
        write_safetensors(path, T, meta)
        with open(path, 'rb') as f:
            raw = f.read()
    return raw[:8 + struct.unpack('<Q', raw[:8])[0]], raw


def check_format(path, T, meta, sections, rep):
    """The file is what this writer makes of its tensors, and (seed, config) regenerate its very header."""
    with open(path, 'rb') as f:
        raw = f.read()
    rep.add('(file re-serialised by this writer, 1 if its bytes differ)', int(header_bytes(T, meta)[1] != raw), 0, 'differs')
    cfg = json.loads(meta['config'])
    full = {'perturbation': json.loads(meta.get('perturbation', '{}')), **sections}
    T2, meta2, _ = MAKERS[meta['case']](int(meta['seed']), cfg, full)
    rep.add('(header regenerated from seed + config, 1 if keys, shapes, dtypes, offsets or metadata differ)',
            int(header_bytes(T2, {**meta2, 'torch_version': meta['torch_version']})[0] != raw[:8 + struct.unpack('<Q', raw[:8])[0]]), 0, 'differs')


def check_folder(folder, verbose):
    ok = True
    checks = {'vit_forward': check_vit_forward, 'head_forward': check_head_forward, 'loss_phase1': check_loss_phase1,
              'loss_phase2': check_loss_phase2, 'train_step': None, 'fewshot_eval': check_fewshot_eval, 'optim_schedules': check_optim_schedules}
    files = sorted(f for f in os.listdir(folder) if f.endswith('.safetensors'))
    if not files:
        sys.exit(f'no .safetensors files in {folder}')
    loaded = {f: read_safetensors(os.path.join(folder, f)) for f in files}
    sections = {f[:-len('.safetensors')]: json.loads(meta['config']) for f, (_, meta) in loaded.items()}
    for f in files:
        T, meta = loaded[f]
        cfg = json.loads(meta['config'])
        rep = Report(f)
        check_format(os.path.join(folder, f), T, meta, sections, rep)
        if meta['case'] == 'train_step':
            check_train_step(T, cfg, rep, meta)
        else:
            checks[meta['case']](T, cfg, rep)
        covered(rep, T)
        rep.print(verbose)
        ok &= rep.ok()
    print('ALL PASS' if ok else 'SOME CHECKS FAILED')
    return ok


# ----------------------------------------------------------------------------------------------
# --selftest: the primitives against torch.nn.functional and literal loop transcriptions (float64).

def selftest():
    torch.manual_seed(0)
    for g0, gh, gw in ((14, 6, 6), (14, 20, 20), (8, 4, 4), (8, 8, 6), (6, 4, 4), (6, 10, 10), (6, 4, 8), (6, 9, 5), (7, 3, 3), (4, 7, 3)):
        grid = torch.randn(1, 3, g0, g0, dtype=F64)
        want = F.interpolate(grid, scale_factor=((gh + 0.1) / g0, (gw + 0.1) / g0), mode='bicubic', align_corners=False)
        got = torch.einsum('yi,cij,xj->cyx', t(bicubic_matrix(gh, g0), F64), grid[0], t(bicubic_matrix(gw, g0), F64))
        assert want.shape[2:] == (gh, gw) and (got - want[0]).abs().max() < 1e-12, (g0, gh, gw)
    # attention against a per-head loop (qkv feature layout which·D + head·d_h + e)
    v = {'patch_size': 4, 'embed_dim': 12, 'num_heads': 3, 'depth': 1, 'mlp_ratio': 2.0, 'img_size': 8}
    P = {k: t(a, F64) for k, a in init_backbone(np.random.default_rng(1), v, json.load(open(os.path.join(os.path.dirname(__file__), 'golden-configs', 'default.json')))['perturbation']).items()}
    x = torch.randn(2, 3, 8, 8, dtype=F64)
    _, attn = backbone_forward(P, x, v)
    y = F.conv2d(x, P['patch_embed.proj.weight'], P['patch_embed.proj.bias'], stride=4).flatten(2).transpose(1, 2)
    y = torch.cat([P['cls_token'].expand(2, 1, 12), y], 1) + P['pos_embed']
    y = F.layer_norm(y, (12,), P['blocks.0.norm1.weight'], P['blocks.0.norm1.bias'], 1e-6)
    qkv = F.linear(y, P['blocks.0.attn.qkv.weight'], P['blocks.0.attn.qkv.bias'])
    for hd in range(3):
        q, k = qkv[..., hd * 4:(hd + 1) * 4], qkv[..., 12 + hd * 4:12 + (hd + 1) * 4]
        assert ((q @ k.transpose(1, 2) / 2).softmax(-1) - attn[:, hd]).abs().max() < 1e-12
    # docs/algorithm.md §5.5 against a literal loop (float64), and gradcheck of every loss w.r.t. the student outputs
    rng = np.random.default_rng(2)
    G, B, L, Np, K, D = 2, 5, 2, 3, 6, 4
    labels = [1, 0, 1, 1, 0]
    x = {'teacher_cls': rng.normal(size=(G * B, K)), 'student_cls': rng.normal(size=(G * B, K)), 'student_local_cls': rng.normal(size=(L * B, K)),
         'teacher_patch': rng.normal(size=(G * B, Np, K)), 'student_patch': rng.normal(size=(G * B, Np, K)), 'teacher_feat': rng.normal(size=(G * B, Np, D)),
         'student_feat': rng.normal(size=(G * B, Np, D)), 'teacher_cls_attn': rng.uniform(0.1, 1, (G * B, Np))}
    x = {k: t(a, F64) for k, a in x.items()}
    o = {'G': G, 'center': t(rng.normal(size=(1, K)), F64), 'center2': t(rng.normal(size=(1, 1, K)), F64), 'teacher_temp': 0.3, 'teacher_patch_temp': 0.25, 'student_temp': 0.5}
    match, _ = match_all(x['student_feat'], x['teacher_feat'], G, B)
    fs = [[x['student_feat'][v * B + i] / x['student_feat'][v * B + i].norm(dim=-1, keepdim=True) for i in range(B)] for v in range(G)]
    ft = [[x['teacher_feat'][v * B + i] / x['teacher_feat'][v * B + i].norm(dim=-1, keepdim=True) for i in range(B)] for v in range(G)]

    def H(p, q):
        return -(p * q).sum()

    for weighted in (False, True):
        contribs = []
        for s in range(G):
            for tv in range(G):
                if s == tv:
                    continue
                for grp in ([0, 2, 3], [1, 4]):
                    for yy in grp:
                        acc = 0
                        for xx in grp:
                            if xx == yy:
                                continue
                            for j in range(Np):
                                n = int(torch.argmax(torch.stack([fs[s][xx][m] @ ft[tv][yy][j] for m in range(Np)])))
                                assert n == match[s, tv, xx, yy, j]
                                pt = F.softmax((x['teacher_patch'][tv * B + yy, j] - o['center2'][0, 0]) / 0.25, -1)
                                ls = F.log_softmax(x['student_patch'][s * B + xx, n] / 0.5, -1)
                                a = x['teacher_cls_attn'][tv * B + yy]
                                acc = acc + H(pt, ls) * (a[j] / a.sum() if weighted else 1.0)
                        contribs.append(acc / (len(grp) - 1) / (1 if weighted else Np))
        want = sum(contribs) / len(contribs)
        assert abs(smkd_patch_loss(x, labels, o, match, weighted).item() - want.item()) < 1e-12
    # docs/algorithm.md §5.4 literal
    pt = F.softmax((x['teacher_cls'] - o['center']) / 0.3, -1)
    ls = F.log_softmax(torch.cat([x['student_cls'], x['student_local_cls']]) / 0.5, -1)
    tot, cnt = 0, 0
    for q in range(G):
        for v in range(G + L):
            for i in range(B):
                for j in range(B):
                    if (v < G and labels[i] == labels[j] and i != j) or (v >= G and i == j):
                        tot, cnt = tot + H(pt[q * B + i], ls[v * B + j]), cnt + 1
    assert abs(smkd_cls_loss(x, labels, o).item() - (tot / cnt).item()) < 1e-12

    def wrap(fn):
        def f(sc, sl, sp):
            return fn({**x, 'student_cls': sc, 'student_local_cls': sl, 'student_patch': sp})
        return f

    args = tuple(x[k].clone().requires_grad_(True) for k in ('student_cls', 'student_local_cls', 'student_patch'))
    masks = torch.tensor(rng.uniform(size=(G * B, Np)) < 0.5)
    oo = {**o, 'lambda1': 0.7, 'lambda3': 1.3}
    for fn in (lambda y: smkd_cls_loss(y, labels, o), lambda y: smkd_patch_loss(y, labels, o, match, False), lambda y: smkd_patch_loss(y, labels, o, match, True),
               lambda y: ref_patch_loss(y, labels, o, False), lambda y: ref_patch_loss(y, labels, o, True), lambda y: ibot_loss({**y, 'masks': masks}, oo)[0]):
        assert torch.autograd.gradcheck(wrap(fn), args)
    # safetensors writer: a shared file read and written back is the same bytes
    shared = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'golden', 'fewshot_eval.safetensors')
    if os.path.exists(shared):
        T, meta = read_safetensors(shared)
        write_safetensors('/tmp/selftest.safetensors', T, meta)
        assert open('/tmp/selftest.safetensors', 'rb').read() == open(shared, 'rb').read()
    print('selftest passed')


# ----------------------------------------------------------------------------------------------

MAKERS = {'vit_forward': make_vit_forward, 'head_forward': make_head_forward, 'loss_phase1': make_loss_phase1, 'loss_phase2': make_loss_phase2,
          'train_step': make_train_step, 'fewshot_eval': make_fewshot_eval, 'optim_schedules': make_optim_schedules}


def case_of(section):
    return 'vit_forward' if section.startswith('vit_forward') else section


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--config', help='JSON: one section per file plus "perturbation"')
    ap.add_argument('--out', help='folder to write the files to')
    ap.add_argument('--only', nargs='*', help='sections to write (default: all)')
    ap.add_argument('--check', metavar='DIR', help='recompute every out.* of the files in DIR')
    ap.add_argument('--verbose', action='store_true', help='--check: print every key')
    ap.add_argument('--selftest', action='store_true')
    a = ap.parse_args()
    if a.selftest:
        selftest()
        return
    if a.check:
        sys.exit(0 if check_folder(a.check, a.verbose) else 1)
    if not (a.config and a.out):
        ap.error('--config and --out (or --check DIR, or --selftest)')
    full = json.load(open(a.config))
    os.makedirs(a.out, exist_ok=True)
    for section, cfg in full.items():
        if section == 'perturbation' or (a.only and section not in a.only):
            continue
        T, meta, notes = MAKERS[case_of(section)](a.seed, cfg, full)
        path = os.path.join(a.out, cfg['file'])
        write_safetensors(path, T, meta)
        print(f'== {cfg["file"]}: {os.path.getsize(path):,} bytes, {len(T)} tensors')
        for n in notes:
            print(f'   {n}')


if __name__ == '__main__':
    main()
