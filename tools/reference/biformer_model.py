"""Independent PyTorch BiFormer forward (legacy bi-level routing attention).

This module is the oracle Sparrow's C BiFormer graph (models/biformer/biformer.c) is checked
against, and the model tools/train/train_biformer.py trains. It shares no code with
tools/convert/biformer.py.

The module tree mirrors the official classifier (rayleizhu/BiFormer models/biformer.py with
ops/bra_legacy.py and models/_common.py), so `state_dict()` has the official checkpoint tensor
names (downsample_layers.*, stages.{i}.{j}.pos_embed / norm1 / attn.qkv.qkv / attn.wo /
attn.lepe / mlp.0 / mlp.3, norm (BatchNorm2d), head). The forward is written from the math
(NHWC throughout):

  stem          conv3x3 s2 p1 (Cin -> C0/2) -> BN -> GELU -> conv3x3 s2 p1 (-> C0) -> BN
  downsample i  conv3x3 s2 p1 (C_{i-1} -> C_i) -> BN                          (i >= 1)
  block         x = x + dwconv3x3(x)                              (pos_embed, bias)
                x = x + attn(LN(x)) ; x = x + MLP(LN(x))          (LN eps 1e-6, pre-norm)
  MLP           Linear(C, F) -> GELU(erf) -> Linear(F, C)
  BRA (topk>0)  x zero-padded bottom/right to multiples of S (auto_pad), BEFORE the qkv Linear;
                qkv = Linear(x) rows [q (qk) | k (qk) | v (C)], heads = contiguous chunks;
                S x S regions of h x w = (H/S) x (W/S) tokens; region q / k = mean over the
                region's tokens (all channels); A = (q_r * scale) k_r^T; each region keeps the
                topk regions of its row of A (torch.topk); every query of the region attends
                (per head, softmax((q * scale) k^T) v) to the tokens of those regions;
                scale = qk ** -0.5 (qk_dim, not the head dim) for router and attention;
                out = wo(attn + dwconv5x5(v over the whole padded map)); crop to the input size.
  global (topk<=0)  AttentionLePE: 8 heads, qkv Linear without bias, scale = (C/8) ** -0.5,
                out = proj(MHSA(x) + dwconv5x5(x))   (LePE on the attention INPUT)
  head          logits = head(mean over tokens(BN(x)))
BatchNorms use their running statistics in eval mode (batch statistics while training).
"""

import math
from collections import OrderedDict

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


def layer_norm(x, w, b, eps):
    mu = x.mean(dim=-1, keepdim=True)
    xc = x - mu
    var = (xc * xc).mean(dim=-1, keepdim=True)
    return xc / torch.sqrt(var + eps) * w + b


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def linear(x, w, b):
    y = torch.matmul(x, w.t())
    return y if b is None else y + b


def conv_nhwc(x, w, b, stride, pad, groups=1):
    y = F.conv2d(x.permute(0, 3, 1, 2), w, b, stride=stride, padding=pad, groups=groups)
    return y.permute(0, 2, 3, 1)


def batch_norm_nhwc(x, bn):
    """Eval: (x - running_mean) / sqrt(running_var + eps) * weight + bias. Training: F.batch_norm."""
    if bn.training:
        return F.batch_norm(x.permute(0, 3, 1, 2), bn.running_mean, bn.running_var, bn.weight, bn.bias, True,
                            bn.momentum, bn.eps).permute(0, 2, 3, 1)
    inv = torch.rsqrt(bn.running_var.to(x.dtype) + bn.eps)
    return (x - bn.running_mean.to(x.dtype)) * (inv * bn.weight) + bn.bias


def softmax_attend(q, k, v, scale):
    s = torch.matmul(q * scale, k.transpose(-1, -2))
    return torch.matmul(torch.softmax(s, dim=-1), v)


# -------------------------------------------------------------------------------------------------
# modules (official names)


class QKVLinear(nn.Module):
    def __init__(self, dim, qk_dim):
        super().__init__()
        self.qkv = nn.Linear(dim, 2 * qk_dim + dim)


class BiLevelRoutingAttention(nn.Module):
    def __init__(self, dim, heads, n_win, topk, qk_dim=None, side_dwconv=5):
        super().__init__()
        self.dim, self.heads, self.n_win, self.topk = dim, heads, n_win, topk
        self.qk_dim = qk_dim or dim
        if self.qk_dim % heads or dim % heads:
            raise ValueError("qk_dim %d and dim %d must be multiples of %d heads" % (self.qk_dim, dim, heads))
        if not 1 <= topk <= n_win * n_win:
            raise ValueError("topk %d out of range for %d regions" % (topk, n_win * n_win))
        self.scale = self.qk_dim ** -0.5
        self.qkv = QKVLinear(dim, self.qk_dim)
        self.wo = nn.Linear(dim, dim)
        self.lepe = nn.Conv2d(dim, dim, side_dwconv, padding=side_dwconv // 2, groups=dim)

    def forward(self, x, trace=None, layer=0):
        nb, h0, w0, c = x.shape
        s, qk, hd = self.n_win, self.qk_dim, self.heads
        pad_b, pad_r = (s - h0 % s) % s, (s - w0 % s) % s
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        _, H, W, _ = x.shape
        rh, rw = H // s, W // s
        P, M = s * s, rh * rw
        qkv = linear(x, self.qkv.qkv.weight, self.qkv.qkv.bias)  # [N,H,W,2qk+C]

        def regions(t):  # [N,H,W,ch] -> [N,P,M,ch], regions row-major, tokens row-major inside
            ch = t.shape[-1]
            return t.reshape(nb, s, rh, s, rw, ch).permute(0, 1, 3, 2, 4, 5).reshape(nb, P, M, ch)

        q, k, v = regions(qkv[..., :qk]), regions(qkv[..., qk:2 * qk]), regions(qkv[..., 2 * qk:])
        q_r, k_r = q.mean(dim=2), k.mean(dim=2)  # [N,P,qk]
        a_r = torch.matmul(q_r * self.scale, k_r.transpose(-1, -2))  # [N,P,P]
        idx = torch.topk(a_r, self.topk, dim=-1).indices  # [N,P,topk]
        bidx = torch.arange(nb)[:, None, None]
        k_sel = k[bidx, idx].reshape(nb, P, self.topk * M, qk)  # [N,P,topk*M,qk]
        v_sel = v[bidx, idx].reshape(nb, P, self.topk * M, c)

        def heads(t):  # [N,P,T,ch] -> [N,P,heads,T,ch/heads]
            return t.reshape(t.shape[0], t.shape[1], t.shape[2], hd, -1).transpose(2, 3)

        o = softmax_attend(heads(q), heads(k_sel), heads(v_sel), self.scale)  # [N,P,heads,M,c/h]
        o = o.transpose(2, 3).reshape(nb, s, s, rh, rw, c).permute(0, 1, 3, 2, 4, 5).reshape(nb, H, W, c)
        lce = conv_nhwc(qkv[..., 2 * qk:], self.lepe.weight, self.lepe.bias, 1, self.lepe.padding[0], groups=c)
        out = linear(o + lce, self.wo.weight, self.wo.bias)
        if trace is not None:
            trace["blk.%d.qk" % layer] = qkv[..., :2 * qk].detach()
            trace["blk.%d.v" % layer] = qkv[..., 2 * qk:].detach()
            trace["blk.%d.attn" % layer] = o.detach()
            trace["blk.%d.lce" % layer] = lce.detach()
        if pad_b or pad_r:
            out = out[:, :h0, :w0, :]
        return out


class AttentionLePE(nn.Module):
    def __init__(self, dim, heads=8, side_dwconv=5):
        super().__init__()
        if dim % heads:
            raise ValueError("dim %d is not a multiple of %d heads" % (dim, heads))
        self.dim, self.heads = dim, heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.lepe = nn.Conv2d(dim, dim, side_dwconv, padding=side_dwconv // 2, groups=dim)

    def forward(self, x, trace=None, layer=0):
        nb, H, W, c = x.shape
        qkv = linear(x, self.qkv.weight, self.qkv.bias).reshape(nb, H * W, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # [N,heads,T,hd] each
        o = softmax_attend(q, k, v, self.scale).transpose(1, 2).reshape(nb, H, W, c)
        lepe = conv_nhwc(x, self.lepe.weight, self.lepe.bias, 1, self.lepe.padding[0], groups=c)
        if trace is not None:
            trace["blk.%d.qkv" % layer] = qkv.reshape(nb, H, W, 3 * c).detach()
            trace["blk.%d.attn" % layer] = o.detach()
            trace["blk.%d.lepe" % layer] = lepe.detach()
        return linear(o + lepe, self.proj.weight, self.proj.bias)


class Block(nn.Module):
    def __init__(self, dim, heads, n_win, topk, mlp_hidden, qk_dim=None, side_dwconv=5, pos_kernel=3):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, pos_kernel, padding=pos_kernel // 2, groups=dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        if topk > 0:
            self.attn = BiLevelRoutingAttention(dim, heads, n_win, topk, qk_dim, side_dwconv)
        else:
            self.attn = AttentionLePE(dim, heads, side_dwconv)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_hidden), nn.Identity(), nn.GELU(), nn.Linear(mlp_hidden, dim))

    def forward(self, x, eps, trace=None, layer=0):
        c = x.shape[-1]
        x = x + conv_nhwc(x, self.pos_embed.weight, self.pos_embed.bias, 1, self.pos_embed.padding[0], groups=c)
        h = layer_norm(x, self.norm1.weight, self.norm1.bias, eps)
        x1 = x + self.attn(h, trace, layer)
        h2 = layer_norm(x1, self.norm2.weight, self.norm2.bias, eps)
        up = gelu_erf(linear(h2, self.mlp[0].weight, self.mlp[0].bias))
        x2 = x1 + linear(up, self.mlp[3].weight, self.mlp[3].bias)
        if trace is not None:
            for name, t in (("pos", x), ("ln1", h), ("attn_res", x1), ("ln2", h2), ("ffn_up", up), ("ffn_res", x2)):
                trace["blk.%d.%s" % (layer, name)] = t.detach()
        return x2


class RefBiFormer(nn.Module):
    """BiFormer classifier. Input: NCHW float images, already normalized.

    topks[i] > 0: BRA stage with n_wins[i] regions per side; topks[i] <= 0: global AttentionLePE
    (BiFormer's stage 4, topk = -2). heads[i]: BRA heads (qk_dim / 32 in the released models);
    global stages use 8 heads."""

    def __init__(self, image_size=224, channels=3, dims=(64, 128, 256, 512), depths=(2, 2, 8, 2), heads=(2, 4, 8, 8),
                 n_wins=7, topks=(1, 4, 16, -2), mlp_ratios=3, qk_dims=None, classes=1000, side_dwconv=5,
                 pos_kernel=3, global_heads=8, eps=1e-6):
        super().__init__()
        n = len(dims)
        seq = lambda v: list(v) if isinstance(v, (list, tuple)) else [v] * n  # noqa: E731
        self.image_size, self.channels, self.dims, self.depths = image_size, channels, list(dims), list(depths)
        self.heads, self.n_wins, self.topks = seq(heads), seq(n_wins), seq(topks)
        self.mlp_ratios, self.qk_dims = seq(mlp_ratios), seq(qk_dims) if qk_dims is not None else list(dims)
        self.classes, self.side_dwconv, self.pos_kernel, self.global_heads, self.eps = \
            classes, side_dwconv, pos_kernel, global_heads, eps
        for name in ("depths", "heads", "n_wins", "topks", "mlp_ratios", "qk_dims"):
            if len(getattr(self, name)) != n:
                raise ValueError("%s needs one entry per stage" % name)
        self.hidden = [int(d * r) for d, r in zip(self.dims, self.mlp_ratios)]
        stem = nn.Sequential(nn.Conv2d(channels, dims[0] // 2, 3, 2, 1), nn.BatchNorm2d(dims[0] // 2), nn.GELU(),
                             nn.Conv2d(dims[0] // 2, dims[0], 3, 2, 1), nn.BatchNorm2d(dims[0]))
        ds = [stem] + [nn.Sequential(nn.Conv2d(dims[i - 1], dims[i], 3, 2, 1), nn.BatchNorm2d(dims[i]))
                       for i in range(1, n)]
        self.downsample_layers = nn.ModuleList(ds)
        # heads each stage's attention really uses (global stages: global_heads, 8 in BiFormer)
        self.attn_heads = [self.heads[i] if self.topks[i] > 0 else global_heads for i in range(n)]
        self.stages = nn.ModuleList([
            nn.Sequential(*[Block(dims[i], self.attn_heads[i], self.n_wins[i], self.topks[i], self.hidden[i],
                                  self.qk_dims[i], side_dwconv, pos_kernel) for _ in range(depths[i])])
            for i in range(n)])
        self.norm = nn.BatchNorm2d(dims[-1])
        self.head = nn.Linear(dims[-1], classes)

    def config(self):
        return dict(image_size=self.image_size, channels=self.channels, dims=self.dims, depths=self.depths,
                    heads=self.heads, n_wins=self.n_wins, topks=self.topks, mlp_ratios=self.mlp_ratios,
                    qk_dims=self.qk_dims, classes=self.classes, side_dwconv=self.side_dwconv,
                    pos_kernel=self.pos_kernel, global_heads=self.global_heads, eps=self.eps)

    # -- initialisation -------------------------------------------------------------------------

    def init_for_training(self, seed):
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for mod in self.modules():
                if isinstance(mod, nn.Linear):
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=g).clamp_(-2, 2) * 0.02)
                    if mod.bias is not None:
                        mod.bias.zero_()
                elif isinstance(mod, (nn.LayerNorm, nn.BatchNorm2d)):
                    mod.weight.fill_(1.0)
                    mod.bias.zero_()
                elif isinstance(mod, nn.Conv2d):
                    fan_in = mod.weight[0].numel()
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                    if mod.bias is not None:
                        mod.bias.zero_()

    def init_random(self, seed):
        """Non-trivial random values everywhere, including BatchNorm running statistics."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, mod in self.named_modules():
                if isinstance(mod, nn.BatchNorm2d):
                    mod.weight.copy_(1.0 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                    mod.bias.copy_(0.3 * torch.randn(mod.bias.shape, generator=g))
                    mod.running_mean.copy_(0.3 * torch.randn(mod.running_mean.shape, generator=g))
                    mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
                elif isinstance(mod, nn.LayerNorm):
                    mod.weight.copy_(1.0 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                    mod.bias.copy_(0.3 * torch.randn(mod.bias.shape, generator=g))
                elif isinstance(mod, (nn.Linear, nn.Conv2d)):
                    fan_in = mod.weight[0].numel()
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / math.sqrt(fan_in))
                    if mod.bias is not None:
                        mod.bias.copy_(0.3 * torch.randn(mod.bias.shape, generator=g))

    # -- forward --------------------------------------------------------------------------------

    def forward(self, img, trace=None):
        x = img.permute(0, 2, 3, 1)
        stem = self.downsample_layers[0]
        x = batch_norm_nhwc(conv_nhwc(x, stem[0].weight, stem[0].bias, 2, 1), stem[1])
        if trace is not None:
            trace["stem.conv1"] = x.detach()
        x = gelu_erf(x)
        x = batch_norm_nhwc(conv_nhwc(x, stem[3].weight, stem[3].bias, 2, 1), stem[4])
        if trace is not None:
            trace["stem.conv2"] = x.detach()
        n = 0
        for i, stage in enumerate(self.stages):
            if i > 0:
                d = self.downsample_layers[i]
                x = batch_norm_nhwc(conv_nhwc(x, d[0].weight, d[0].bias, 2, 1), d[1])
                if trace is not None:
                    trace["ds.%d" % i] = x.detach()
            for blk in stage:
                x = blk(x, self.eps, trace, n)
                n += 1
        pooled = x.flatten(1, 2).mean(dim=1)
        feat = batch_norm_nhwc(x, self.norm).flatten(1, 2).mean(dim=1)
        logits = linear(feat, self.head.weight, self.head.bias)
        if trace is not None:
            trace["pooled"] = pooled.detach()
            trace["norm"] = feat.detach()
            trace["logits"] = logits.detach()
        return logits

    # -- import from Sparrow's GGUF ---------------------------------------------------------------

    @classmethod
    def from_gguf_tensors(cls, kv, tensors):
        """Build from a biformer GGUF (kv = metadata, tensors = name -> numpy array, shape = ggml ne
        reversed). The BatchNorms were folded by the converter: here they become identities
        (running stats 0/1, weight 1, bias 0, eps 0) after the folded convs, and the final one an
        affine (weight = norm.scale, bias = norm.shift). Layouts are undone from the schema in
        models/biformer/biformer.h, independently of the converter."""
        def u(key):
            return int(kv["biformer." + key])

        def arr(key):
            return [int(v) for v in kv["biformer." + key]]

        dims, depths = arr("embedding_length"), arr("depths")
        hidden = arr("feed_forward_length")
        topks = [int(v) for v in kv["biformer.topk"]]
        heads = arr("attention.head_count")
        glob = sorted({h for h, k in zip(heads, topks) if k <= 0})
        if len(glob) > 1:
            raise ValueError("global-attention stages with different head counts %s" % glob)
        m = cls(u("image_size"), u("num_channels"), dims, depths, heads, arr("n_win"), topks,
                [h / d for h, d in zip(hidden, dims)], arr("qk_dim"), u("num_classes"), u("lce_kernel"),
                u("pos_kernel"), glob[0] if glob else 8,
                float(kv.get("biformer.attention.layer_norm_epsilon", 1e-6)))

        def t(name, shape):
            if name not in tensors:
                raise KeyError("tensor %s is missing" % name)
            a = np.asarray(tensors[name], dtype=np.float32)
            have = tuple(a.shape)
            while len(have) > len(shape) and have[0] == 1:
                have = have[1:]
            if have != tuple(shape):
                raise ValueError("tensor %s has numpy shape %s, expected %s" % (name, tuple(a.shape), shape))
            return torch.from_numpy(a.reshape(shape).copy())

        def conv(name, cout, cin, k=3):  # [Cout][KH][KW][Cin] -> [Cout][Cin][KH][KW]
            return t(name, (cout, k, k, cin)).permute(0, 3, 1, 2)

        def dw(name, c, k):  # [KH][KW][C] -> [C][1][KH][KW]
            return t(name, (k, k, c)).permute(2, 0, 1)[:, None]

        def identity_bn(bn):
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            bn.weight.fill_(1.0)
            bn.bias.zero_()
            bn.eps = 0.0

        cin = m.channels
        with torch.no_grad():
            stem = m.downsample_layers[0]
            stem[0].weight.copy_(conv("stem.conv1.weight", dims[0] // 2, cin))
            stem[0].bias.copy_(t("stem.conv1.bias", (dims[0] // 2,)))
            stem[3].weight.copy_(conv("stem.conv2.weight", dims[0], dims[0] // 2))
            stem[3].bias.copy_(t("stem.conv2.bias", (dims[0],)))
            identity_bn(stem[1])
            identity_bn(stem[4])
            for i in range(1, len(dims)):
                d = m.downsample_layers[i]
                d[0].weight.copy_(conv("ds.%d.weight" % i, dims[i], dims[i - 1]))
                d[0].bias.copy_(t("ds.%d.bias" % i, (dims[i],)))
                identity_bn(d[1])
            n = 0
            for i, stage in enumerate(m.stages):
                c, f, qk = dims[i], m.hidden[i], m.qk_dims[i]
                for blk in stage:
                    p = "blk.%d." % n
                    pk = m.pos_kernel
                    blk.pos_embed.weight.copy_(dw(p + "pos.weight", c, pk))
                    blk.pos_embed.bias.copy_(t(p + "pos.bias", (c,)))
                    blk.norm1.weight.copy_(t(p + "ln1.weight", (c,)))
                    blk.norm1.bias.copy_(t(p + "ln1.bias", (c,)))
                    blk.norm1.eps = m.eps
                    blk.norm2.eps = m.eps
                    a = blk.attn
                    if isinstance(a, BiLevelRoutingAttention):
                        a.qkv.qkv.weight.copy_(torch.cat([t(p + "attn_qk.weight", (2 * qk, c)),
                                                          t(p + "attn_v.weight", (c, c))]))
                        a.qkv.qkv.bias.copy_(torch.cat([t(p + "attn_qk.bias", (2 * qk,)), t(p + "attn_v.bias", (c,))]))
                        a.wo.weight.copy_(t(p + "attn_out.weight", (c, c)))
                        a.wo.bias.copy_(t(p + "attn_out.bias", (c,)))
                    else:
                        a.qkv.weight.copy_(t(p + "attn_qkv.weight", (3 * c, c)))
                        a.proj.weight.copy_(t(p + "attn_out.weight", (c, c)))
                        a.proj.bias.copy_(t(p + "attn_out.bias", (c,)))
                    a.lepe.weight.copy_(dw(p + "attn_lce.weight", c, m.side_dwconv))
                    a.lepe.bias.copy_(t(p + "attn_lce.bias", (c,)))
                    blk.norm2.weight.copy_(t(p + "ln2.weight", (c,)))
                    blk.norm2.bias.copy_(t(p + "ln2.bias", (c,)))
                    blk.mlp[0].weight.copy_(t(p + "ffn_up.weight", (f, c)))
                    blk.mlp[0].bias.copy_(t(p + "ffn_up.bias", (f,)))
                    blk.mlp[3].weight.copy_(t(p + "ffn_down.weight", (c, f)))
                    blk.mlp[3].bias.copy_(t(p + "ffn_down.bias", (c,)))
                    n += 1
            last = dims[-1]
            identity_bn(m.norm)
            m.norm.weight.copy_(t("norm.scale", (last,)))
            m.norm.bias.copy_(t("norm.shift", (last,)))
            m.head.weight.copy_(t("head.weight", (m.classes, last)))
            m.head.bias.copy_(t("head.bias", (m.classes,)))
        m.eval()
        return m


def official_state_dict(m):
    """The official checkpoint's tensors (the BiFormer repository wraps them as {"model": sd})."""
    return OrderedDict((k, v.detach().clone().contiguous()) for k, v in m.state_dict().items())
