"""An independent PyTorch re-implementation of the tiny preset (docs/algorithm.md §10.2), for cross-checking the
learning curves of the WebGPU trainer on the same data. It is a diagnostic, not part of the project:
it needs `pip install torch numpy` and is run by hand, never by the tests.

  npx tsx scripts/reference/dump-synthetic.ts /tmp/smkd-reference
  python3 scripts/reference/smkd_tiny.py '{"mode": "smkd"}'            # phase 1 (60 its) + phase 2 (30 its)
  python3 scripts/reference/smkd_tiny.py '{"mode": "ce", "lr": 0.002, "steps": 120}'

Options (JSON): data (folder), mode 'smkd'|'ce', I (iterations per virtual epoch, 10), e1 / e2
(phase-1 / phase-2 epochs, 6 / 3), lr, lr2, ttw / tt (teacher temperature warm-up start / final),
tt_ep, mom (teacher momentum start), lam3, K, every (evaluate every N iterations), episodes, seed.

Faithful to docs/algorithm.md: the ViT (timm layout, the reference code's init), the shared DINO head with a weight-normalised
last layer (norm_last_layer), block masks (docs/algorithm.md §4.3), both phase losses (§5.3-§5.5, uniform patch
matching), centres, schedules, clipping, freezing, EMA, P x K sampling, prototype evaluation on
[cls] + attention-weighted patch features (docs/algorithm.md §8.1). Simplified: the augmentation (random resized crop,
flip, brightness/contrast jitter, grayscale; no saturation/hue jitter, blur or solarisation), and
resize-free evaluation at the native 32 px.
"""
import copy, json, math, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

o = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
torch.set_num_threads(o.get('threads', 2))
DATA = o.get('data', '/tmp/smkd-reference')
I = o.get('I', 10)
torch.manual_seed(o.get('seed', 0))
gen = torch.Generator().manual_seed(o.get('seed', 0))
rng = np.random.default_rng(o.get('seed', 0))


def load(split):
    x = np.fromfile(f'{DATA}/synthetic-{split}.u8', dtype=np.uint8).reshape(-1, 32, 32, 3)
    y = np.fromfile(f'{DATA}/synthetic-{split}.labels', dtype=np.int32)
    return torch.tensor(x).permute(0, 3, 1, 2).float() / 255, torch.tensor(y).long()


class Block(nn.Module):
    def __init__(s, d, h):
        super().__init__()
        s.n1, s.n2, s.h = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6), h
        s.qkv, s.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        s.fc1, s.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(s, x):
        B, T, D = x.shape
        q, k, v = s.qkv(s.n1(x)).reshape(B, T, 3, s.h, D // s.h).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-1, -2) * (D // s.h) ** -0.5).softmax(-1)
        x = x + s.proj((a @ v).transpose(1, 2).reshape(B, T, D))
        return x + s.fc2(F.gelu(s.fc1(s.n2(x)))), a


class ViT(nn.Module):
    def __init__(s, d=64, depth=4, h=2, p=4, img=32, ncls=0):
        super().__init__()
        s.patch_embed = nn.Conv2d(3, d, p, p)  # PyTorch's default conv init (docs/algorithm.md §1.9)
        s.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        s.pos_embed = nn.Parameter(torch.zeros(1, (img // p) ** 2 + 1, d))
        s.masked_embed = nn.Parameter(torch.zeros(1, d))
        s.blocks = nn.ModuleList([Block(d, h) for _ in range(depth)])
        s.norm = nn.LayerNorm(d, eps=1e-6)
        s.head = nn.Linear(d, ncls) if ncls else None
        nn.init.trunc_normal_(s.cls_token, std=.02)
        nn.init.trunc_normal_(s.pos_embed, std=.02)
        for m in s.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=.02)
                nn.init.zeros_(m.bias)

    def pos_for(s, g):
        G = int(math.sqrt(s.pos_embed.shape[1] - 1))
        if g == G:
            return s.pos_embed
        pp = s.pos_embed[:, 1:].reshape(1, G, G, -1).permute(0, 3, 1, 2)
        pp = F.interpolate(pp, size=(g, g), mode='bicubic', align_corners=False).permute(0, 2, 3, 1).reshape(1, g * g, -1)
        return torch.cat([s.pos_embed[:, :1], pp], 1)

    def forward(s, x, mask=None):
        """All final-LayerNorm tokens and the last block's attention."""
        t = s.patch_embed(x)
        g = t.shape[-1]
        t = t.flatten(2).transpose(1, 2)
        if mask is not None:
            t = torch.where(mask[..., None], s.masked_embed.to(t.dtype), t)
        t = torch.cat([s.cls_token.expand(t.shape[0], -1, -1), t], 1) + s.pos_for(g)
        for b in s.blocks:
            t, a = b(t)
        return s.norm(t), a


class Head(nn.Module):
    """3-layer MLP, L2-normalised bottleneck, weight-normalised last layer with g = 1 (norm_last_layer)."""

    def __init__(s, d=64, hid=128, bot=64, K=256):
        super().__init__()
        s.mlp = nn.Sequential(nn.Linear(d, hid), nn.GELU(), nn.Linear(hid, hid), nn.GELU(), nn.Linear(hid, bot))
        for m in s.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=.02)
                nn.init.zeros_(m.bias)
        s.weight_v = nn.Parameter(torch.empty(K, bot).uniform_(-bot ** -.5, bot ** -.5))

    def forward(s, x):
        return F.normalize(s.mlp(x), dim=-1) @ F.normalize(s.weight_v, dim=-1).T


class Net(nn.Module):
    def __init__(s):
        super().__init__()
        s.backbone, s.head = ViT(), Head(K=o.get('K', 256))

    def forward(s, x, mask=None):
        t, _ = s.backbone(x, mask)
        return t, s.head(t)


def random_resized_crop(x, out, scale):
    """Per image: area in `scale`, aspect in [3/4, 4/3] (log-uniform), horizontal flip, bilinear."""
    B = x.shape[0]
    area = torch.empty(B).uniform_(*scale, generator=gen)
    r = torch.exp(torch.empty(B).uniform_(math.log(3 / 4), math.log(4 / 3), generator=gen))
    w, h = torch.sqrt(area * r).clamp(max=1), torch.sqrt(area / r).clamp(max=1)
    cx = torch.rand(B, generator=gen) * (1 - w) + w / 2
    cy = torch.rand(B, generator=gen) * (1 - h) + h / 2
    flip = (torch.rand(B, generator=gen) < .5).float() * 2 - 1
    lin = torch.linspace(-1, 1, out) * (out - 1) / out
    gx = (cx * 2 - 1)[:, None] + w[:, None] * lin[None] * (-flip[:, None])
    gy = (cy * 2 - 1)[:, None] + h[:, None] * lin[None]
    grid = torch.stack([gx[:, None, :].expand(B, out, out), gy[:, :, None].expand(B, out, out)], -1)
    return F.grid_sample(x, grid, mode='bilinear', align_corners=False)


def jitter(x):
    B = x.shape[0]
    on = (torch.rand(B, 1, 1, 1, generator=gen) < .8).float()
    b = 1 + (torch.rand(B, 1, 1, 1, generator=gen) * .8 - .4) * on
    c = 1 + (torch.rand(B, 1, 1, 1, generator=gen) * .8 - .4) * on
    x = (x * b).clamp(0, 1)
    m = x.mean((1, 2, 3), keepdim=True)
    x = ((x - m) * c + m).clamp(0, 1)
    g = (torch.rand(B, 1, 1, 1, generator=gen) < .2).float()
    return x * (1 - g) + x.mean(1, keepdim=True) * g


def block_masks(B, g=8):
    """docs/algorithm.md §4.2-§4.3: half the crops unmasked, the others U(0.1, 0.5) of the grid in blocks."""
    m = torch.zeros(B, g, g, dtype=torch.bool)
    for b in range(B):
        if rng.random() < .5:
            continue
        T, count = rng.uniform(.1, .5) * g * g, 0
        while count < T:
            added = 0
            for _ in range(10):
                lo, hi = sorted((4, T - count))
                area = rng.uniform(lo, hi)
                a = math.exp(rng.uniform(math.log(.3), math.log(1 / .3)))
                h, w = int(round(math.sqrt(area * a))), int(round(math.sqrt(area / a)))
                if w < g and h < g:
                    top, left = rng.integers(0, g - h + 1), rng.integers(0, g - w + 1)
                    new = int((~m[b, top:top + h, left:left + w]).sum())
                    if 0 < new <= T - count:
                        m[b, top:top + h, left:left + w] = True
                        added = new
                if added:
                    break
            if not added:
                break
            count += added
    return m.flatten(1)


@torch.no_grad()
def features(vit, x, mean, std):
    """docs/algorithm.md §8.1: [cls] and the attention-weighted mean of patch tokens, each L2-normalised."""
    vit.eval()
    out = []
    for i in range(0, len(x), 256):
        t, a = vit((x[i:i + 256] - mean) / std)
        w = a.mean(1)[:, 0, 1:]
        w = w / w.sum(-1, keepdim=True)
        zw = (w[..., None] * t[:, 1:]).sum(1)
        out.append(torch.cat([F.normalize(t[:, 0], dim=-1), F.normalize(zw, dim=-1)], -1))
    vit.train()
    return torch.cat(out)


def fewshot(f, y, shots, ways=5, q=15):
    """Prototype classifier, mean accuracy (%) and 95 % half-width over seeded episodes."""
    r = np.random.default_rng(0)
    y = y.numpy()
    idx = {c: np.where(y == c)[0] for c in np.unique(y)}
    acc = []
    for _ in range(o.get('episodes', 500)):
        cs = r.choice(list(idx), ways, replace=False)
        protos, qs = [], []
        for c in cs:
            p = r.permutation(idx[c])[:shots + q]
            protos.append(f[p[:shots]].mean(0))
            qs.append(f[p[shots:]])
        P, Q = F.normalize(torch.stack(protos), dim=-1), F.normalize(torch.cat(qs), dim=-1)
        acc.append(((Q @ P.T).argmax(-1).numpy() == np.repeat(np.arange(ways), q)).mean() * 100)
    return f'{np.mean(acc):.2f}±{1.96 * np.std(acc) / math.sqrt(len(acc)):.2f}'


def report(tag, vit):
    f = features(vit, xte, mean, std)
    print(tag, '1-shot', fewshot(f, yte, 1), '5-shot', fewshot(f, yte, 5), f'({time.time() - t0:.0f} s)', flush=True)


def cosine(base, final, it, total):
    return final + (base - final) * 0.5 * (1 + math.cos(math.pi * it / total))


def train_smkd(phase, net, epochs, lr, teacher=None, opt=None, centers=None):
    total, warm = epochs * I, o.get('warm', 1) * I
    if teacher is None:
        teacher = copy.deepcopy(net)
    for p in teacher.parameters():
        p.requires_grad_(False)
    if opt is None:
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.04)
    c1, c2 = centers if centers is not None else (None, None)
    ttw, tt, ts = o.get('ttw', 0.04), o.get('tt', 0.07), 0.1
    tt_ep = o.get('tt_ep', 2 if phase == 1 else 1)
    lam2, lam3 = o.get('lam2', 1.0), o.get('lam3', 1.0 if phase == 1 else 0.0)
    for it in range(total):
        lr_now = lr * (it + 1) / warm if it < warm else cosine(lr, 1e-5, it - warm, total - warm)
        mom = cosine(o.get('mom', 0.98), 1, it, total)
        ep = it // I
        temp = ttw + (tt - ttw) * ep / tt_ep if ep < tt_ep else tt
        for g in opt.param_groups:
            g['lr'], g['weight_decay'] = lr_now, cosine(0.04, 0.4, it, total)
        if phase == 1:
            idx = torch.randint(0, len(xtr), (16,), generator=gen)
        else:  # P x K = 8 x 2
            cls = rng.choice(int(ytr.max()) + 1, 8, replace=False)
            idx = torch.tensor(np.concatenate([rng.choice(np.where(ytr.numpy() == c)[0], 2, replace=False) for c in cls]))
        x, lab, B = xtr[idx], ytr[idx], len(idx)
        glob = torch.cat([(jitter(random_resized_crop(x, 32, (0.25, 1))) - mean) / std for _ in range(2)])
        loc = torch.cat([(jitter(random_resized_crop(x, 16, (0.05, 0.25))) - mean) / std for _ in range(2)])
        masks = block_masks(2 * B)
        with torch.no_grad():
            tf, th = teacher(glob)
        sf, sh = net(glob, masks)
        _, slh = net(loc)
        if c1 is None:  # centres start from the first batch (schedule.centerInit 'batch')
            c1, c2 = th[:, 0].mean(0, keepdim=True), th[:, 1:].mean((0, 1))
        Np = th.shape[1] - 1
        pt = F.softmax((th[:, 0] - c1) / temp, -1).reshape(2, B, -1)
        ppt = F.softmax((th[:, 1:] - c2) / temp, -1).reshape(2, B, Np, -1)
        ls = F.log_softmax(torch.cat([sh[:, 0], slh[:, 0]]) / ts, -1).reshape(4, B, -1)
        lps = F.log_softmax(sh[:, 1:] / ts, -1).reshape(2, B, Np, -1)
        if phase == 1:  # docs/algorithm.md §5.3
            lc = sum(-(pt[q] * ls[v]).sum(-1).mean() for q in range(2) for v in range(4) if v != q) / 6
            mm = masks.reshape(2, B, Np).float()
            lm = sum(((-(ppt[v] * lps[v]).sum(-1) * mm[v]).sum(-1) / mm[v].sum(-1).clamp(min=1)).mean() for v in range(2)) / 2
            loss, terms = lc + lam3 * lm, {'cls': lc.item(), 'mim': lm.item()}
        else:  # docs/algorithm.md §5.4 and §5.5
            Mh = (lab[:, None] == lab[None]).float() - torch.eye(B)
            tot = 0
            for q in range(2):
                for v in range(2):
                    tot = tot + (Mh * -(pt[q] @ ls[v].T)).sum()
                for v in range(2, 4):
                    tot = tot + (-(pt[q] * ls[v]).sum(-1)).sum()
            lc = tot / (4 * Mh.sum() + 4 * B)
            fs = F.normalize(sf[:, 1:].detach(), dim=-1).reshape(2, B, Np, -1)
            ft = F.normalize(tf[:, 1:], dim=-1).reshape(2, B, Np, -1)
            contrib = []
            for s_, t_ in [(0, 1), (1, 0)]:
                for y in range(B):
                    xs = [j for j in range(B) if j != y and lab[j] == lab[y]]
                    if xs:
                        contrib.append(sum((-(ppt[t_, y] * lps[s_, j][(ft[t_, y] @ fs[s_, j].T).argmax(-1)]).sum(-1)).mean() for j in xs) / len(xs))
            lp = torch.stack(contrib).mean()
            loss, terms = lc + lam2 * lp, {'cls': lc.item(), 'patch': lp.item()}
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 3.0)
        if phase == 1 and ep < o.get('freeze', 1):
            net.head.weight_v.grad = None
        opt.step()
        with torch.no_grad():
            for a, b in zip(net.parameters(), teacher.parameters()):
                b.mul_(mom).add_((1 - mom) * a)
            c1 = c1 * .9 + th[:, 0].mean(0, keepdim=True) * .1
            c2 = c2 * .9 + th[:, 1:].mean((0, 1)) * .1
        if (it + 1) % o.get('every', 1000000) == 0 or it + 1 == total:
            print(f'phase {phase} it {it + 1}', {k: round(v, 3) for k, v in terms.items()}, flush=True)
            report(f'  teacher after phase {phase} it {it + 1}:', teacher.backbone)
    return net, teacher, opt, (c1, c2)


def train_ce():
    vit = ViT(ncls=int(ytr.max()) + 1)
    report('random init:', vit)
    lr, steps, warm = o.get('lr', 5e-4), o.get('steps', 120), o.get('warm', 1) * I
    opt = torch.optim.AdamW(vit.parameters(), lr=lr, weight_decay=0.04)
    for it in range(steps):
        for g in opt.param_groups:
            g['lr'] = lr * (it + 1) / warm if it < warm else cosine(lr, 1e-5, it - warm, steps - warm)
        idx = torch.randint(0, len(xtr), (16,), generator=gen)
        x = torch.cat([(jitter(random_resized_crop(xtr[idx], 32, (0.25, 1))) - mean) / std for _ in range(2)])
        t, _ = vit(x)
        loss = F.cross_entropy(vit.head(t[:, 0]), ytr[idx].repeat(2))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vit.parameters(), 3.0)
        opt.step()
        if (it + 1) % o.get('every', 1000000) == 0 or it + 1 == steps:
            print(f'it {it + 1} loss {loss.item():.3f}', flush=True)
            report(f'  after it {it + 1}:', vit)


xtr, ytr = load('train')
xte, yte = load('test')
mean, std = xtr.mean((0, 2, 3)).view(3, 1, 1), xtr.std((0, 2, 3)).view(3, 1, 1)
t0 = time.time()
if o.get('mode', 'smkd') == 'ce':
    train_ce()
else:
    net = Net()
    report('random init:', net.backbone)
    net, teacher, opt, centers = train_smkd(1, net, o.get('e1', 6), o.get('lr', 5e-4))
    if o.get('e2', 3):
        train_smkd(2, net, o.get('e2', 3), o.get('lr2', o.get('lr', 5e-4)), teacher=teacher, opt=opt, centers=centers)
