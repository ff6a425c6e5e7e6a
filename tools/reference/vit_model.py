"""Independent PyTorch ViT / DeiT forward, written from the math.

This module is the oracle that Sparrow's C ViT graph is checked against. It
shares no code with tools/convert/vit.py: it has its own parameter names, its
own forward, and its own exporters to the external naming schemes (timm,
torchvision, Hugging Face), so a shape or layout mistake in the converter shows
up as a mismatch instead of being reproduced on both sides.

Math (B images, T = prefix + (S/P)^2 tokens, D dims, H heads, hd = D/H):
  tokens  = patchify(img) @ Wp^T + bp          patches in row-major grid order,
                                               each patch vector in (c, y, x) order
  x       = [cls, (dist,) tokens] + pos
  per block:
    h     = LN(x; ln1)
    qkv   = h @ Wqkv^T (+ bqkv)                rows q | k | v, heads contiguous
    attn  = concat_h softmax(q_h k_h^T * scale) v_h
    x     = x + attn @ Wo^T + bo
    h     = LN(x; ln2)
    up    = gelu_erf(h @ Wup^T + bup)
    x     = x + up @ Wdown^T + bdown
  cls pool:  c = LN(x[:, :prefix]; norm); logits = head(c0) (+ head_dist(c1)) / 2 if distilled
  mean pool: p = LN(mean(x[:, prefix:]); norm); logits = head(p)
"""

import math
from collections import OrderedDict

import numpy as np
import torch
from torch import nn


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


class RefBlock(nn.Module):
    def __init__(self, dim, heads, ffn, qkv_bias):
        super().__init__()
        self.dim, self.heads = dim, heads
        self.ln1_w = nn.Parameter(torch.ones(dim))
        self.ln1_b = nn.Parameter(torch.zeros(dim))
        self.qkv_w = nn.Parameter(torch.zeros(3 * dim, dim))
        self.qkv_b = nn.Parameter(torch.zeros(3 * dim)) if qkv_bias else None
        self.out_w = nn.Parameter(torch.zeros(dim, dim))
        self.out_b = nn.Parameter(torch.zeros(dim))
        self.ln2_w = nn.Parameter(torch.ones(dim))
        self.ln2_b = nn.Parameter(torch.zeros(dim))
        self.up_w = nn.Parameter(torch.zeros(ffn, dim))
        self.up_b = nn.Parameter(torch.zeros(ffn))
        self.down_w = nn.Parameter(torch.zeros(dim, ffn))
        self.down_b = nn.Parameter(torch.zeros(dim))

    def forward(self, x, eps, scale, trace=None, layer=0):
        bsz, n_tok, dim = x.shape
        hd = dim // self.heads
        h = layer_norm(x, self.ln1_w, self.ln1_b, eps)
        qkv = linear(h, self.qkv_w, self.qkv_b)
        q = qkv[..., 0 * dim:1 * dim].reshape(bsz, n_tok, self.heads, hd).transpose(1, 2)
        k = qkv[..., 1 * dim:2 * dim].reshape(bsz, n_tok, self.heads, hd).transpose(1, 2)
        v = qkv[..., 2 * dim:3 * dim].reshape(bsz, n_tok, self.heads, hd).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-1, -2)) * scale
        s = s - s.max(dim=-1, keepdim=True).values
        p = torch.exp(s)
        p = p / p.sum(dim=-1, keepdim=True)
        a = torch.matmul(p, v).transpose(1, 2).reshape(bsz, n_tok, dim)
        x1 = x + linear(a, self.out_w, self.out_b)
        h2 = layer_norm(x1, self.ln2_w, self.ln2_b, eps)
        up = gelu_erf(linear(h2, self.up_w, self.up_b))
        x2 = x1 + linear(up, self.down_w, self.down_b)
        if trace is not None:
            for name, t in (("ln1", h), ("qkv", qkv), ("attn", a), ("attn_res", x1), ("ln2", h2),
                            ("ffn_up", up), ("ffn_res", x2)):
                trace["blk.%d.%s" % (layer, name)] = t.detach()
        return x2


class RefViT(nn.Module):
    """ViT / DeiT classifier. Input: NCHW float images, already normalized."""

    def __init__(self, image_size, patch, channels, dim, depth, heads, ffn, classes, qkv_bias=True,
                 distilled=False, pool="cls", eps=1e-6, scale=None):
        super().__init__()
        if image_size % patch or dim % heads:
            raise ValueError("image_size must be a multiple of patch and dim a multiple of heads")
        if pool not in ("cls", "mean") or (distilled and pool != "cls"):
            raise ValueError("pool must be cls or mean (distilled models use cls)")
        self.image_size, self.patch, self.channels = image_size, patch, channels
        self.dim, self.depth, self.heads, self.ffn, self.classes = dim, depth, heads, ffn, classes
        self.qkv_bias, self.distilled, self.pool, self.eps = qkv_bias, distilled, pool, eps
        self.scale = scale if scale is not None else (dim // heads) ** -0.5
        self.grid = image_size // patch
        self.n_prefix = 2 if distilled else 1
        self.n_tokens = self.n_prefix + self.grid * self.grid
        self.patch_w = nn.Parameter(torch.zeros(dim, channels, patch, patch))
        self.patch_b = nn.Parameter(torch.zeros(dim))
        self.cls = nn.Parameter(torch.zeros(dim))
        self.dist = nn.Parameter(torch.zeros(dim)) if distilled else None
        self.pos = nn.Parameter(torch.zeros(self.n_tokens, dim))
        self.blocks = nn.ModuleList([RefBlock(dim, heads, ffn, qkv_bias) for _ in range(depth)])
        self.norm_w = nn.Parameter(torch.ones(dim))
        self.norm_b = nn.Parameter(torch.zeros(dim))
        self.head_w = nn.Parameter(torch.zeros(classes, dim))
        self.head_b = nn.Parameter(torch.zeros(classes))
        self.head_dist_w = nn.Parameter(torch.zeros(classes, dim)) if distilled else None
        self.head_dist_b = nn.Parameter(torch.zeros(classes)) if distilled else None

    def config(self):
        return dict(image_size=self.image_size, patch=self.patch, channels=self.channels, dim=self.dim,
                    depth=self.depth, heads=self.heads, ffn=self.ffn, classes=self.classes,
                    qkv_bias=self.qkv_bias, distilled=self.distilled, pool=self.pool, eps=self.eps,
                    scale=self.scale)

    # -- initialisation -------------------------------------------------------------------------

    def init_for_training(self, seed):
        """Truncated-normal(0.02) weights, zero biases, unit norms (the usual ViT recipe)."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith(("_b",)) or name in ("cls", "dist"):
                    p.zero_()
                elif name.startswith(("ln", "norm")) or ".ln" in name:
                    p.fill_(1.0)
                else:
                    p.copy_(torch.randn(p.shape, generator=g).clamp_(-2, 2) * 0.02)
            self.pos.copy_(torch.randn(self.pos.shape, generator=g).clamp_(-2, 2) * 0.02)
            self.cls.copy_(torch.randn(self.cls.shape, generator=g) * 0.02)

    def init_random(self, seed):
        """Non-trivial random values everywhere (norm gains != 1, biases != 0) for golden tests.

        Linear weights get std 1/sqrt(fan_in) so activations stay O(1) through the blocks."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                leaf = name.rsplit(".", 1)[-1]
                if leaf in ("ln1_w", "ln2_w", "norm_w"):
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
                elif leaf.endswith("_b") or leaf in ("cls", "dist", "pos"):
                    p.copy_(0.3 * torch.randn(p.shape, generator=g))
                else:
                    fan_in = p[0].numel()
                    p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))

    # -- forward --------------------------------------------------------------------------------

    def patchify(self, img):
        bsz, c, s, _ = img.shape
        if not torch.jit.is_tracing() and (c != self.channels or s != self.image_size or img.shape[3] != s):
            raise ValueError("expected images of shape [B,%d,%d,%d], got %s" %
                             (self.channels, self.image_size, self.image_size, tuple(img.shape)))
        g, p = self.grid, self.patch
        x = img.reshape(bsz, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(bsz, g * g, c * p * p)

    def forward(self, img, trace=None):
        bsz = img.shape[0]
        tok = linear(self.patchify(img), self.patch_w.reshape(self.dim, -1), self.patch_b)
        prefix = [self.cls.reshape(1, 1, -1).expand(bsz, 1, self.dim)]
        if self.distilled:
            prefix.append(self.dist.reshape(1, 1, -1).expand(bsz, 1, self.dim))
        x = torch.cat(prefix + [tok], dim=1) + self.pos
        if trace is not None:
            trace["embed"] = x.detach()
        for l, blk in enumerate(self.blocks):
            x = blk(x, self.eps, self.scale, trace, l)
        if self.pool == "mean":
            pooled = x[:, self.n_prefix:].mean(dim=1)
            normed = layer_norm(pooled, self.norm_w, self.norm_b, self.eps)
            logits = linear(normed, self.head_w, self.head_b)
            if trace is not None:
                trace["pooled"] = pooled.detach()
                trace["fc_norm"] = normed.detach()
        else:
            normed = layer_norm(x[:, :self.n_prefix], self.norm_w, self.norm_b, self.eps)
            logits = linear(normed[:, 0], self.head_w, self.head_b)
            if self.distilled:
                logits = 0.5 * (logits + linear(normed[:, 1], self.head_dist_w, self.head_dist_b))
            if trace is not None:
                trace["norm"] = normed.detach()
        if trace is not None:
            trace["logits"] = logits.detach()
        return logits

    # -- exporters to external naming schemes -----------------------------------------------------

    def _blocks(self):
        for l, b in enumerate(self.blocks):
            yield l, b

    def timm_state_dict(self):
        """timm VisionTransformer / DeiT names (global_pool='avg' -> fc_norm instead of norm)."""
        d = OrderedDict()
        d["cls_token"] = self.cls.reshape(1, 1, -1)
        if self.distilled:
            d["dist_token"] = self.dist.reshape(1, 1, -1)
        d["pos_embed"] = self.pos.reshape(1, self.n_tokens, self.dim)
        d["patch_embed.proj.weight"] = self.patch_w
        d["patch_embed.proj.bias"] = self.patch_b
        for l, b in self._blocks():
            pre = "blocks.%d." % l
            d[pre + "norm1.weight"], d[pre + "norm1.bias"] = b.ln1_w, b.ln1_b
            d[pre + "attn.qkv.weight"] = b.qkv_w
            if b.qkv_b is not None:
                d[pre + "attn.qkv.bias"] = b.qkv_b
            d[pre + "attn.proj.weight"], d[pre + "attn.proj.bias"] = b.out_w, b.out_b
            d[pre + "norm2.weight"], d[pre + "norm2.bias"] = b.ln2_w, b.ln2_b
            d[pre + "mlp.fc1.weight"], d[pre + "mlp.fc1.bias"] = b.up_w, b.up_b
            d[pre + "mlp.fc2.weight"], d[pre + "mlp.fc2.bias"] = b.down_w, b.down_b
        norm = "fc_norm" if self.pool == "mean" else "norm"
        d[norm + ".weight"], d[norm + ".bias"] = self.norm_w, self.norm_b
        d["head.weight"], d["head.bias"] = self.head_w, self.head_b
        if self.distilled:
            d["head_dist.weight"], d["head_dist.bias"] = self.head_dist_w, self.head_dist_b
        return _detach(d)

    def torchvision_state_dict(self, mlp_style="seq"):
        """torchvision VisionTransformer names; mlp_style 'seq' (mlp.0/mlp.3) or 'old' (linear_1/2)."""
        if self.distilled or self.pool != "cls" or not self.qkv_bias:
            raise ValueError("torchvision ViT has cls pooling, no distillation token and a qkv bias")
        up, down = ("mlp.0", "mlp.3") if mlp_style == "seq" else ("mlp.linear_1", "mlp.linear_2")
        d = OrderedDict()
        d["class_token"] = self.cls.reshape(1, 1, -1)
        d["conv_proj.weight"], d["conv_proj.bias"] = self.patch_w, self.patch_b
        d["encoder.pos_embedding"] = self.pos.reshape(1, self.n_tokens, self.dim)
        for l, b in self._blocks():
            pre = "encoder.layers.encoder_layer_%d." % l
            d[pre + "ln_1.weight"], d[pre + "ln_1.bias"] = b.ln1_w, b.ln1_b
            d[pre + "self_attention.in_proj_weight"] = b.qkv_w
            d[pre + "self_attention.in_proj_bias"] = b.qkv_b
            d[pre + "self_attention.out_proj.weight"] = b.out_w
            d[pre + "self_attention.out_proj.bias"] = b.out_b
            d[pre + "ln_2.weight"], d[pre + "ln_2.bias"] = b.ln2_w, b.ln2_b
            d[pre + up + ".weight"], d[pre + up + ".bias"] = b.up_w, b.up_b
            d[pre + down + ".weight"], d[pre + down + ".bias"] = b.down_w, b.down_b
        d["encoder.ln.weight"], d["encoder.ln.bias"] = self.norm_w, self.norm_b
        d["heads.head.weight"], d["heads.head.bias"] = self.head_w, self.head_b
        return _detach(d)

    def hf_state_dict(self):
        """Hugging Face ViTForImageClassification names (q, k, v as separate Linears)."""
        if self.distilled or self.pool != "cls":
            raise ValueError("HF ViTForImageClassification has cls pooling and no distillation token")
        dim = self.dim
        d = OrderedDict()
        e = "vit.embeddings."
        d[e + "cls_token"] = self.cls.reshape(1, 1, -1)
        d[e + "position_embeddings"] = self.pos.reshape(1, self.n_tokens, dim)
        d[e + "patch_embeddings.projection.weight"] = self.patch_w
        d[e + "patch_embeddings.projection.bias"] = self.patch_b
        for l, b in self._blocks():
            pre = "vit.encoder.layer.%d." % l
            for i, n in enumerate(("query", "key", "value")):
                d[pre + "attention.attention.%s.weight" % n] = b.qkv_w[i * dim:(i + 1) * dim]
                if b.qkv_b is not None:
                    d[pre + "attention.attention.%s.bias" % n] = b.qkv_b[i * dim:(i + 1) * dim]
            d[pre + "attention.output.dense.weight"] = b.out_w
            d[pre + "attention.output.dense.bias"] = b.out_b
            d[pre + "intermediate.dense.weight"], d[pre + "intermediate.dense.bias"] = b.up_w, b.up_b
            d[pre + "output.dense.weight"], d[pre + "output.dense.bias"] = b.down_w, b.down_b
            d[pre + "layernorm_before.weight"], d[pre + "layernorm_before.bias"] = b.ln1_w, b.ln1_b
            d[pre + "layernorm_after.weight"], d[pre + "layernorm_after.bias"] = b.ln2_w, b.ln2_b
        d["vit.layernorm.weight"], d["vit.layernorm.bias"] = self.norm_w, self.norm_b
        d["classifier.weight"], d["classifier.bias"] = self.head_w, self.head_b
        return _detach(d)

    def hf_config(self, labels=None):
        cfg = {
            "architectures": ["ViTForImageClassification"],
            "model_type": "vit",
            "hidden_size": self.dim,
            "num_hidden_layers": self.depth,
            "num_attention_heads": self.heads,
            "intermediate_size": self.ffn,
            "hidden_act": "gelu",
            "layer_norm_eps": self.eps,
            "image_size": self.image_size,
            "patch_size": self.patch,
            "num_channels": self.channels,
            "qkv_bias": self.qkv_bias,
        }
        if labels is not None:
            cfg["id2label"] = {str(i): s for i, s in enumerate(labels)}
            cfg["label2id"] = {s: i for i, s in enumerate(labels)}
        return cfg

    # -- import from Sparrow's GGUF ---------------------------------------------------------------

    @classmethod
    def from_gguf_tensors(cls, kv, tensors):
        """Build from a vit GGUF: kv = metadata dict, tensors = name -> numpy array with the shape
        reversed from ggml ne (so a {in,out} Linear is an [out,in] array). Layouts are undone here
        from the schema in models/vit/vit.h, independently of the converter."""
        def u(key):
            return int(kv["vit." + key])
        pool = kv.get("vit.pooling", "cls")
        m = cls(u("image_size"), u("patch_size"), u("num_channels"), u("embedding_length"), u("block_count"),
                u("attention.head_count"), u("feed_forward_length"), u("num_classes"),
                qkv_bias=any(n.endswith("attn_qkv.bias") for n in tensors),
                distilled=bool(kv.get("vit.distilled", False)), pool=pool,
                eps=float(kv.get("vit.attention.layer_norm_epsilon", 1e-6)),
                scale=float(kv["vit.attention.scale"]) if "vit.attention.scale" in kv else None)

        def t(name, shape):
            if name not in tensors:
                raise KeyError("tensor %s is missing" % name)
            a = tensors[name]
            # ggml allows trailing ne of 1 to be omitted, i.e. leading numpy dims of 1
            have = tuple(a.shape)
            while len(have) > len(shape) and have[0] == 1:
                have = have[1:]
            if have != tuple(shape):
                raise ValueError("tensor %s has numpy shape %s, expected %s" % (name, tuple(a.shape), shape))
            return torch.from_numpy(np.array(a, dtype=np.float32).reshape(shape))

        def t_or_zero(name, shape):  # optional biases
            return t(name, shape) if name in tensors else torch.zeros(shape)

        D, C, P, F, K = m.dim, m.channels, m.patch, m.ffn, m.classes
        with torch.no_grad():
            m.patch_w.copy_(t("patch_embd.weight", (D, P, P, C)).permute(0, 3, 1, 2))  # NHWC -> NCHW kernel
            m.patch_b.copy_(t("patch_embd.bias", (D,)))
            m.cls.copy_(t("cls_token", (D,)))
            if m.distilled:
                m.dist.copy_(t("dist_token", (D,)))
            m.pos.copy_(t("pos_embd", (m.n_tokens, D)))
            for l, b in enumerate(m.blocks):
                pre = "blk.%d." % l
                b.ln1_w.copy_(t(pre + "ln1.weight", (D,)))
                b.ln1_b.copy_(t(pre + "ln1.bias", (D,)))
                b.qkv_w.copy_(t(pre + "attn_qkv.weight", (3 * D, D)))
                if b.qkv_b is not None:
                    b.qkv_b.copy_(t(pre + "attn_qkv.bias", (3 * D,)))
                b.out_w.copy_(t(pre + "attn_out.weight", (D, D)))
                b.out_b.copy_(t_or_zero(pre + "attn_out.bias", (D,)))
                b.ln2_w.copy_(t(pre + "ln2.weight", (D,)))
                b.ln2_b.copy_(t(pre + "ln2.bias", (D,)))
                b.up_w.copy_(t(pre + "ffn_up.weight", (F, D)))
                b.up_b.copy_(t_or_zero(pre + "ffn_up.bias", (F,)))
                b.down_w.copy_(t(pre + "ffn_down.weight", (D, F)))
                b.down_b.copy_(t_or_zero(pre + "ffn_down.bias", (D,)))
            m.norm_w.copy_(t("norm.weight", (D,)))
            m.norm_b.copy_(t("norm.bias", (D,)))
            m.head_w.copy_(t("head.weight", (K, D)))
            m.head_b.copy_(t_or_zero("head.bias", (K,)))
            if m.distilled:
                m.head_dist_w.copy_(t("head_dist.weight", (K, D)))
                m.head_dist_b.copy_(t_or_zero("head_dist.bias", (K,)))
        return m


def _detach(d):
    return OrderedDict((k, v.detach().clone().contiguous()) for k, v in d.items())
