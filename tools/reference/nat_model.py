"""Independent PyTorch NAT / DiNAT forward (neighborhood attention as dense attention + a mask).

This module is the oracle Sparrow's C NAT graph (models/nat/nat.c) is checked against, and
the model tools/train/train_nat.py trains. It shares no code with tools/convert/nat.py.

The module tree mirrors the official NAT / DiNAT classifiers (SHI-Labs NAT repository,
classification/nat.py and dinat.py), so `state_dict()` has the official checkpoint tensor
names (patch_embed.proj.0, levels.{i}.blocks.{j}.attn.qkv / rpb / proj, levels.{i}.downsample
.reduction, norm, head, ...). The forward is written from the math:

  ConvTokenizer   x = LN(conv3x3 s2 p1(conv3x3 s2 p1(img)))         NHWC tokens, no act between
  level i         dim C_i = C_0 * 2^i, depth[i] NATLayers, then (i < last) ConvDownsampler
  NATLayer        x = x + g1 * NA(LN(x)) ; x = x + g2 * MLP(LN(x))   g = layer scale (or 1)
  NA              qkv = Linear(x) rows [q | k | v], heads contiguous (head_dim = C / heads);
                  logits = (q * scale) . k + rpb[h, (K-1) + dy', (K-1) + dx'] on the NATTEN
                  neighbourhood (window rule below), -inf elsewhere; softmax; . v; Linear proj
                  If H or W < K * d the map is zero-padded bottom/right to K * d BEFORE the qkv
                  Linear (padded tokens get q = k = v = bias and are not masked) and the output
                  is cropped before proj (NATTEN <= 0.14 NeighborhoodAttention2D).
  MLP             fc2(gelu_erf(fc1(x)))
  ConvDownsampler x = LN(conv3x3 s2 p1, no bias (x))  C -> 2C
  head            logits = head(mean over tokens(LN(x)))
LayerNorm eps 1e-5 (nn.LayerNorm's default, as in the official models).

Neighbourhood rule per axis (NATTEN's reference mask; length L, kernel K, dilation d,
non-causal, stride 1): query i is in dilation group g = i % d at group coordinate i' = i // d;
the group has Lg = L // d + (g < L % d) tokens; left = K // 2, right = K // 2 + K % 2 - 1;
start = max(i' - left, 0) + (i' + right >= Lg) * (Lg - right - i' - 1); key j is a neighbour
iff j % d == g and start <= j // d < start + K. 2-D = both axes. The rpb index per axis is
(K - 1) + (j' - i') (group coordinates).
"""

import math
from collections import OrderedDict

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


# -------------------------------------------------------------------------------------------------
# math helpers


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


def conv_nhwc(x, w, b, stride, pad):
    """x [B,H,W,Cin] NHWC, w [Cout,Cin,KH,KW] (PyTorch layout) -> [B,OH,OW,Cout]."""
    y = F.conv2d(x.permute(0, 3, 1, 2), w, b, stride=stride, padding=pad)
    return y.permute(0, 2, 3, 1)


def na_axis(length, kernel, dilation):
    """NATTEN neighbourhood along one axis: (mask [L,L] bool, rpb index [L,L] long), query rows."""
    if kernel * dilation > length:
        raise ValueError("kernel %d * dilation %d > length %d" % (kernel, dilation, length))
    left, right = kernel // 2, kernel // 2 + kernel % 2 - 1
    mask = np.zeros((length, length), dtype=bool)
    rel = np.zeros((length, length), dtype=np.int64)
    for i in range(length):
        g, ip = i % dilation, i // dilation
        lg = length // dilation + (1 if g < length % dilation else 0)
        start = max(ip - left, 0) + ((lg - right - ip - 1) if ip + right >= lg else 0)
        for j in range(g, length, dilation):
            jp = j // dilation
            if start <= jp < start + kernel:
                mask[i, j] = True
                rel[i, j] = (kernel - 1) + (jp - ip)
    assert (mask.sum(axis=1) == kernel).all()
    return torch.from_numpy(mask), torch.from_numpy(rel)


def na2d_mask(h, w, kernel, dilation):
    """2-D neighbourhood over H x W tokens (row-major): mask [HW,HW], rpb row/col index [HW,HW]."""
    mh, rh = na_axis(h, kernel, dilation)
    mw, rw = na_axis(w, kernel, dilation)
    mask = (mh[:, None, :, None] & mw[None, :, None, :]).reshape(h * w, h * w)
    ri = rh[:, None, :, None].expand(h, w, h, w).reshape(h * w, h * w)
    ci = rw[None, :, None, :].expand(h, w, h, w).reshape(h * w, h * w)
    return mask, ri, ci


# -------------------------------------------------------------------------------------------------
# modules (official names)


class ConvTokenizer(nn.Module):
    def __init__(self, in_chans, dim):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(in_chans, dim // 2, 3, 2, 1), nn.Conv2d(dim // 2, dim, 3, 2, 1))
        self.norm = nn.LayerNorm(dim)


class ConvDownsampler(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.reduction = nn.Conv2d(dim, 2 * dim, 3, 2, 1, bias=False)
        self.norm = nn.LayerNorm(2 * dim)


class NeighborhoodAttention2D(nn.Module):
    def __init__(self, dim, heads, kernel, dilation, qkv_bias=True, rpb=True):
        super().__init__()
        self.dim, self.heads, self.kernel, self.dilation = dim, heads, kernel, dilation
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.rpb = nn.Parameter(torch.zeros(heads, 2 * kernel - 1, 2 * kernel - 1)) if rpb else None
        self.proj = nn.Linear(dim, dim)
        self._masks = {}

    def mask(self, h, w):
        key = (h, w)
        if key not in self._masks:
            self._masks[key] = na2d_mask(h, w, self.kernel, self.dilation)
        return self._masks[key]

    def forward(self, x, trace=None, layer=0):
        bsz, h0, w0, c = x.shape
        win = self.kernel * self.dilation
        pad_b, pad_r = max(0, win - h0), max(0, win - w0)
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        _, h, w, _ = x.shape
        qkv = linear(x, self.qkv.weight, self.qkv.bias)
        hd = self.head_dim
        t = qkv.reshape(bsz, h * w, 3, self.heads, hd).permute(2, 0, 3, 1, 4)  # [3,B,heads,N,hd]
        q, k, v = t[0] * self.scale, t[1], t[2]
        logits = torch.matmul(q, k.transpose(-1, -2))  # [B,heads,N,N]
        mask, ri, ci = self.mask(h, w)
        if self.rpb is not None:
            logits = logits + self.rpb[:, ri, ci].to(logits.dtype)[None]
        logits = logits.masked_fill(~mask, float("-inf"))
        p = torch.softmax(logits, dim=-1)
        a = torch.matmul(p, v).transpose(1, 2).reshape(bsz, h, w, c)
        if trace is not None:
            trace["blk.%d.qkv" % layer] = qkv.detach()
            trace["blk.%d.attn" % layer] = a.detach()
        if pad_b or pad_r:
            a = a[:, :h0, :w0, :]
            if trace is not None:
                trace["blk.%d.attn_crop" % layer] = a.detach()
        return linear(a, self.proj.weight, self.proj.bias)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)


class NATLayer(nn.Module):
    def __init__(self, dim, heads, kernel, dilation, mlp_hidden, layer_scale=None, qkv_bias=True, rpb=True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = NeighborhoodAttention2D(dim, heads, kernel, dilation, qkv_bias, rpb)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden)
        self.layer_scale = layer_scale is not None
        if self.layer_scale:
            self.gamma1 = nn.Parameter(layer_scale * torch.ones(dim))
            self.gamma2 = nn.Parameter(layer_scale * torch.ones(dim))

    def forward(self, x, eps, trace=None, layer=0):
        h = layer_norm(x, self.norm1.weight, self.norm1.bias, eps)
        a = self.attn(h, trace, layer)
        x1 = x + (self.gamma1 * a if self.layer_scale else a)
        h2 = layer_norm(x1, self.norm2.weight, self.norm2.bias, eps)
        up = gelu_erf(linear(h2, self.mlp.fc1.weight, self.mlp.fc1.bias))
        dn = linear(up, self.mlp.fc2.weight, self.mlp.fc2.bias)
        x2 = x1 + (self.gamma2 * dn if self.layer_scale else dn)
        if trace is not None:
            for name, t in (("ln1", h), ("attn_res", x1), ("ln2", h2), ("ffn_up", up), ("ffn_res", x2)):
                trace["blk.%d.%s" % (layer, name)] = t.detach()
        return x2


class NATLevel(nn.Module):
    def __init__(self, blocks, downsample):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample


class RefNAT(nn.Module):
    """NAT / DiNAT classifier. Input: NCHW float images, already normalized.

    kernels / dilations: one list per level with one entry per block (or an int for all)."""

    def __init__(self, image_size=224, channels=3, dim=64, depths=(3, 4, 6, 5), heads=(2, 4, 8, 16), kernels=7,
                 dilations=1, mlp_ratio=3.0, layer_scale=None, classes=1000, qkv_bias=True, rpb=True, eps=1e-5):
        super().__init__()
        n = len(depths)
        if len(heads) != n:
            raise ValueError("depths and heads need one entry per level")

        def per_block(v, what):
            out = []
            for i in range(n):
                vi = v[i] if isinstance(v, (list, tuple)) else v
                vi = list(vi) if isinstance(vi, (list, tuple)) else [vi] * depths[i]
                if len(vi) != depths[i]:
                    raise ValueError("%s[%d] has %d entries for %d blocks" % (what, i, len(vi), depths[i]))
                out.append([int(k) for k in vi])
            return out

        self.image_size, self.channels, self.dim, self.depths = image_size, channels, dim, list(depths)
        self.heads, self.kernels, self.dilations = list(heads), per_block(kernels, "kernels"), \
            per_block(dilations, "dilations")
        self.mlp_ratio, self.layer_scale, self.classes = mlp_ratio, layer_scale, classes
        self.qkv_bias, self.use_rpb, self.eps = qkv_bias, rpb, eps
        self.dims = [dim * 2 ** i for i in range(n)]
        self.hidden = [int(d * mlp_ratio) for d in self.dims]
        self.patch_embed = ConvTokenizer(channels, dim)
        levels = []
        for i in range(n):
            d = self.dims[i]
            if d % heads[i]:
                raise ValueError("level %d: dim %d is not a multiple of %d heads" % (i, d, heads[i]))
            blocks = [NATLayer(d, heads[i], self.kernels[i][j], self.dilations[i][j], self.hidden[i], layer_scale,
                               qkv_bias, rpb) for j in range(depths[i])]
            levels.append(NATLevel(blocks, ConvDownsampler(d) if i < n - 1 else None))
        self.levels = nn.ModuleList(levels)
        self.norm = nn.LayerNorm(self.dims[-1])
        self.head = nn.Linear(self.dims[-1], classes)

    def config(self):
        return dict(image_size=self.image_size, channels=self.channels, dim=self.dim, depths=self.depths,
                    heads=self.heads, kernels=self.kernels, dilations=self.dilations, mlp_ratio=self.mlp_ratio,
                    layer_scale=self.layer_scale, classes=self.classes, qkv_bias=self.qkv_bias, rpb=self.use_rpb,
                    eps=self.eps)

    # -- initialisation -------------------------------------------------------------------------

    def init_for_training(self, seed):
        """trunc-normal(0.02) Linear weights and rpb, zero biases, unit norms; convs keep PyTorch's init."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for mod in self.modules():
                if isinstance(mod, nn.Linear):
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=g).clamp_(-2, 2) * 0.02)
                    if mod.bias is not None:
                        mod.bias.zero_()
                elif isinstance(mod, nn.LayerNorm):
                    mod.weight.fill_(1.0)
                    mod.bias.zero_()
                elif isinstance(mod, nn.Conv2d):
                    fan_in = mod.weight[0].numel()
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                    if mod.bias is not None:
                        mod.bias.zero_()
                elif isinstance(mod, NeighborhoodAttention2D) and mod.rpb is not None:
                    mod.rpb.copy_(torch.randn(mod.rpb.shape, generator=g).clamp_(-2, 2) * 0.02)

    def init_random(self, seed):
        """Non-trivial random values everywhere (norm gains != 1, biases != 0) for golden tests."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                leaf = name.rsplit(".", 1)[-1]
                parent = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else ""
                if leaf == "weight" and ("norm" in parent):
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
                elif leaf == "bias" or leaf == "rpb":
                    p.copy_(0.3 * torch.randn(p.shape, generator=g))
                elif leaf in ("gamma1", "gamma2"):
                    p.copy_(0.5 + 0.3 * torch.randn(p.shape, generator=g))
                else:
                    fan_in = p[0].numel()
                    p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))

    # -- forward --------------------------------------------------------------------------------

    def forward(self, img, trace=None):
        eps = self.eps
        pe = self.patch_embed
        x = img.permute(0, 2, 3, 1)
        x = conv_nhwc(x, pe.proj[0].weight, pe.proj[0].bias, 2, 1)
        if trace is not None:
            trace["tok_conv1"] = x.detach()
        x = conv_nhwc(x, pe.proj[1].weight, pe.proj[1].bias, 2, 1)
        if trace is not None:
            trace["tok_conv2"] = x.detach()
        x = layer_norm(x, pe.norm.weight, pe.norm.bias, eps)
        if trace is not None:
            trace["tok_norm"] = x.detach()
        n = 0
        for i, lv in enumerate(self.levels):
            for blk in lv.blocks:
                x = blk(x, eps, trace, n)
                n += 1
            if lv.downsample is not None:
                x = conv_nhwc(x, lv.downsample.reduction.weight, None, 2, 1)
                if trace is not None:
                    trace["ds.%d.conv" % i] = x.detach()
                x = layer_norm(x, lv.downsample.norm.weight, lv.downsample.norm.bias, eps)
                if trace is not None:
                    trace["ds.%d.norm" % i] = x.detach()
        x = layer_norm(x, self.norm.weight, self.norm.bias, eps)
        pooled = x.flatten(1, 2).mean(dim=1)
        logits = linear(pooled, self.head.weight, self.head.bias)
        if trace is not None:
            trace["norm"] = x.detach()
            trace["pooled"] = pooled.detach()
            trace["logits"] = logits.detach()
        return logits

    # -- import from Sparrow's GGUF ---------------------------------------------------------------

    @classmethod
    def from_gguf_tensors(cls, kv, tensors):
        """Build from a nat GGUF (kv = metadata, tensors = name -> numpy array, shape = ggml ne
        reversed). Layouts are undone from the schema in models/nat/nat.h, independently of the
        converter."""
        def u(key):
            return int(kv["nat." + key])

        def arr(key):
            return [int(v) for v in kv["nat." + key]]

        depths = arr("depths")
        ks, ds, off = [], [], 0
        kall, dall = arr("kernel_sizes"), arr("dilations")
        for d in depths:
            ks.append(kall[off:off + d])
            ds.append(dall[off:off + d])
            off += d
        dim = u("embedding_length")
        hidden = arr("feed_forward_length")
        ratio = hidden[0] / dim
        layer_scale = 1.0 if any(n.endswith(".gamma1") for n in tensors) else None
        m = cls(u("image_size"), u("num_channels"), dim, depths, arr("attention.head_count"), ks, ds, ratio,
                layer_scale, u("num_classes"), qkv_bias=any(n.endswith("attn_qkv.bias") for n in tensors),
                rpb=any(n.endswith("attn_rpb") for n in tensors),
                eps=float(kv.get("nat.attention.layer_norm_epsilon", 1e-5)))
        if m.hidden != hidden:
            raise ValueError("feed_forward_length %s is not dim * one mlp ratio (%s)" % (hidden, m.hidden))

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

        def conv(name, cout, cin):  # [Cout][KH][KW][Cin] -> [Cout][Cin][KH][KW]
            return t(name, (cout, 3, 3, cin)).permute(0, 3, 1, 2)

        C, Cin = dim, m.channels
        with torch.no_grad():
            pe = m.patch_embed
            pe.proj[0].weight.copy_(conv("tok.conv1.weight", C // 2, Cin))
            pe.proj[0].bias.copy_(t("tok.conv1.bias", (C // 2,)))
            pe.proj[1].weight.copy_(conv("tok.conv2.weight", C, C // 2))
            pe.proj[1].bias.copy_(t("tok.conv2.bias", (C,)))
            pe.norm.weight.copy_(t("tok.norm.weight", (C,)))
            pe.norm.bias.copy_(t("tok.norm.bias", (C,)))
            n = 0
            for i, lv in enumerate(m.levels):
                d, f = m.dims[i], m.hidden[i]
                for blk in lv.blocks:
                    p = "blk.%d." % n
                    blk.norm1.weight.copy_(t(p + "ln1.weight", (d,)))
                    blk.norm1.bias.copy_(t(p + "ln1.bias", (d,)))
                    blk.attn.qkv.weight.copy_(t(p + "attn_qkv.weight", (3 * d, d)))
                    if blk.attn.qkv.bias is not None:
                        blk.attn.qkv.bias.copy_(t(p + "attn_qkv.bias", (3 * d,)))
                    if blk.attn.rpb is not None:
                        k2 = 2 * blk.attn.kernel - 1
                        blk.attn.rpb.copy_(t(p + "attn_rpb", (blk.attn.heads, k2, k2)))
                    blk.attn.proj.weight.copy_(t(p + "attn_out.weight", (d, d)))
                    blk.attn.proj.bias.copy_(t(p + "attn_out.bias", (d,)))
                    blk.norm2.weight.copy_(t(p + "ln2.weight", (d,)))
                    blk.norm2.bias.copy_(t(p + "ln2.bias", (d,)))
                    blk.mlp.fc1.weight.copy_(t(p + "ffn_up.weight", (f, d)))
                    blk.mlp.fc1.bias.copy_(t(p + "ffn_up.bias", (f,)))
                    blk.mlp.fc2.weight.copy_(t(p + "ffn_down.weight", (d, f)))
                    blk.mlp.fc2.bias.copy_(t(p + "ffn_down.bias", (d,)))
                    if blk.layer_scale:
                        blk.gamma1.copy_(t(p + "gamma1", (d,)))
                        blk.gamma2.copy_(t(p + "gamma2", (d,)))
                    n += 1
                if lv.downsample is not None:
                    lv.downsample.reduction.weight.copy_(conv("ds.%d.weight" % i, 2 * d, d))
                    lv.downsample.norm.weight.copy_(t("ds.%d.norm.weight" % i, (2 * d,)))
                    lv.downsample.norm.bias.copy_(t("ds.%d.norm.bias" % i, (2 * d,)))
            last = m.dims[-1]
            m.norm.weight.copy_(t("norm.weight", (last,)))
            m.norm.bias.copy_(t("norm.bias", (last,)))
            m.head.weight.copy_(t("head.weight", (m.classes, last)))
            m.head.bias.copy_(t("head.bias", (m.classes,)))
        return m


def official_state_dict(m):
    """The official checkpoint's tensors (a bare state dict, as the NAT repository saves them)."""
    return OrderedDict((k, v.detach().clone().contiguous()) for k, v in m.state_dict().items())
