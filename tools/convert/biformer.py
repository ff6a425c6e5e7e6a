#!/usr/bin/python3
"""Convert a BiFormer classifier checkpoint to a Sparrow GGUF (general.architecture "biformer").

Reads the official checkpoint tensor names (rayleizhu/BiFormer models/biformer.py; the released
.pth wraps the state dict as {"model": ...}, which is unwrapped, as are "state_dict" etc.):
  downsample_layers.0.{0,3}.{weight,bias}  downsample_layers.0.{1,4}.<BatchNorm>    (stem)
  downsample_layers.{i}.0.{weight,bias}    downsample_layers.{i}.1.<BatchNorm>      (i >= 1)
  stages.{i}.{j}.pos_embed.{weight,bias}   stages.{i}.{j}.norm1/norm2.{weight,bias}
  BRA stages:    .attn.qkv.qkv.{weight [2qk+C, C], bias}  .attn.wo.{weight,bias}  .attn.lepe.{weight,bias}
  global stages: .attn.qkv.weight [3C, C] (no bias)  .attn.proj.{weight,bias}  .attn.lepe.{weight,bias}
  stages.{i}.{j}.mlp.0 / mlp.3.{weight,bias}   norm.<BatchNorm>   head.{weight,bias}
  <BatchNorm> = weight, bias, running_mean, running_var (num_batches_tracked is ignored).
The BatchNorms are folded: into the stem / downsample conv weights and biases, and the final one
into an affine (norm.scale, norm.shift) that the model applies after the global mean. The fused
qkv of a BRA block is split into its q|k rows (attn_qk) and v rows (attn_v) so the LCE
depthwise conv reads a contiguous V map. Layout: models/biformer/biformer.h.

Dims, depths, qk dims, MLP sizes and the conv kernels come from the tensor shapes, and a stage
is global attention exactly when its blocks have attn.proj instead of attn.qkv.qkv. Not in the
weights: topk per BRA stage (--topk or --variant), regions per side (--n-win, default 7), heads
(--heads per stage; default qk_dim / --head-dim for BRA stages and 8 for global stages, as in
BiFormer) and the input size (--image-size or --variant).

Presets (--variant) check the shapes and supply heads, topk 1/4/16/-2, n_win 7, image size 224
and ImageNet mean/std: biformer_tiny biformer_small biformer_base. --random writes a preset with
random weights (benchmarks). --type f16 stores the Linear weights and the dense conv kernels as
F16. Errors print one line on stderr and exit with status 2.
"""

import argparse
import math
import os
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402
from conv_common import (add_common_args, count_indexed, input_hparams, open_source,  # noqa: E402
                         refuse_unused, run_main, write_model)
from vit import ConvertError  # noqa: E402


VARIANTS = {
    "biformer_tiny": dict(dims=[64, 128, 256, 512], depths=[2, 2, 8, 2], heads=[2, 4, 8, 8], topk=[1, 4, 16, -2],
                          n_win=7, mlp_ratio=3),
    "biformer_small": dict(dims=[64, 128, 256, 512], depths=[4, 4, 18, 4], heads=[2, 4, 8, 8], topk=[1, 4, 16, -2],
                           n_win=7, mlp_ratio=3),
    "biformer_base": dict(dims=[96, 192, 384, 768], depths=[4, 4, 18, 4], heads=[3, 6, 12, 8], topk=[1, 4, 16, -2],
                          n_win=7, mlp_ratio=3),
}

IGNORABLE = (r"num_batches_tracked$",)



def _bn(src, name, c, eps):
    """BatchNorm2d -> (scale, shift) with y = x * scale + shift."""
    w, b = src.get(name + ".weight", (c,)), src.get(name + ".bias", (c,))
    rm, rv = src.get(name + ".running_mean", (c,)), src.get(name + ".running_var", (c,))
    if (rv < 0).any():
        raise ConvertError("tensor %s.running_var has negative values" % name)
    scale = (w.astype(np.float64) / np.sqrt(rv.astype(np.float64) + eps))
    shift = b.astype(np.float64) - rm.astype(np.float64) * scale
    return scale, shift


def _conv_bn(src, conv, bn, cout, cin, eps):
    w = src.get(conv + ".weight")
    if w.ndim != 4 or w.shape[2:] != (3, 3) or (cout is not None and w.shape[0] != cout) or \
            (cin is not None and w.shape[1] != cin):
        raise ConvertError("tensor %s.weight has shape %s, expected [%s, %s, 3, 3]" %
                           (conv, list(w.shape), cout or "Cout", cin or "Cin"))
    c = w.shape[0]
    b = src.opt(conv + ".bias", (c,))
    scale, shift = _bn(src, bn, c, eps)
    wf = (w.astype(np.float64) * scale[:, None, None, None]).astype(np.float32)
    bf = ((b.astype(np.float64) if b is not None else 0.0) * scale + shift).astype(np.float32)
    return wf, bf


def _dw(src, name, c):
    w = src.get(name + ".weight")
    if w.ndim != 4 or w.shape[0] != c or w.shape[1] != 1 or w.shape[2] != w.shape[3] or w.shape[2] % 2 == 0:
        raise ConvertError("tensor %s.weight has shape %s, expected [%d, 1, k, k] with odd k" % (name, list(w.shape), c))
    return w, src.get(name + ".bias", (c,)), w.shape[2]


def read_model(src, bn_eps):
    if not src.has("downsample_layers.0.0.weight") or not src.has("stages.0.0.pos_embed.weight"):
        raise ConvertError("not a BiFormer checkpoint: downsample_layers.0.0.weight / stages.0.0.pos_embed.weight "
                           "missing from %s" % src.path)
    w1, b1 = _conv_bn(src, "downsample_layers.0.0", "downsample_layers.0.1", None, None, bn_eps)
    half, cin = w1.shape[0], w1.shape[1]
    w2, b2 = _conv_bn(src, "downsample_layers.0.3", "downsample_layers.0.4", None, half, bn_eps)
    n_stages = count_indexed(src, "stages.%d.")
    if n_stages == 0:
        raise ConvertError("no stages.{i}.{j}.* tensors in %s" % src.path)
    m = dict(cin=cin, stem=(w1, b1, w2, b2), ds=[None], stages=[])
    dims = [w2.shape[0]]
    if dims[0] != 2 * half:
        raise ConvertError("tensor downsample_layers.0.3.weight has %d output channels, expected 2 x %d" %
                           (dims[0], half))
    for i in range(1, n_stages):
        w, b = _conv_bn(src, "downsample_layers.%d.0" % i, "downsample_layers.%d.1" % i, None, dims[-1], bn_eps)
        m["ds"].append((w, b))
        dims.append(w.shape[0])
    if src.has("downsample_layers.%d.0.weight" % n_stages):
        raise ConvertError("downsample_layers.%d exists but stages.%d does not" % (n_stages, n_stages))
    pos_k = lce_k = None
    for i in range(n_stages):
        c = dims[i]
        depth = count_indexed(src, "stages.%d.%d.", i)
        blocks, kind, qk, hidden = [], None, None, None
        for j in range(depth):
            p = "stages.%d.%d." % (i, j)
            b = OrderedDict()
            pw, pb, k = _dw(src, p + "pos_embed", c)
            if pos_k not in (None, k):
                raise ConvertError("tensor %spos_embed.weight has kernel %d, others %d" % (p, k, pos_k))
            pos_k = k
            b["pos.weight"] = np.ascontiguousarray(pw[:, 0].transpose(1, 2, 0))  # [KH][KW][C]
            b["pos.bias"] = pb
            b["ln1.weight"] = src.get(p + "norm1.weight", (c,))
            b["ln1.bias"] = src.get(p + "norm1.bias", (c,))
            if src.has(p + "attn.qkv.qkv.weight"):
                this = "bra"
                w = src.get(p + "attn.qkv.qkv.weight")
                if w.ndim != 2 or w.shape[1] != c or (w.shape[0] - c) <= 0 or (w.shape[0] - c) % 2:
                    raise ConvertError("tensor %sattn.qkv.qkv.weight has shape %s, expected [2*qk + %d, %d]" %
                                       (p, list(w.shape), c, c))
                q = (w.shape[0] - c) // 2
                bias = src.opt(p + "attn.qkv.qkv.bias", (w.shape[0],))
                b["attn_qk.weight"] = np.ascontiguousarray(w[:2 * q])
                if bias is not None:
                    b["attn_qk.bias"] = np.ascontiguousarray(bias[:2 * q])
                b["attn_v.weight"] = np.ascontiguousarray(w[2 * q:])
                if bias is not None:
                    b["attn_v.bias"] = np.ascontiguousarray(bias[2 * q:])
                out = "attn.wo"
            elif src.has(p + "attn.qkv.weight") and src.has(p + "attn.proj.weight"):
                this, q = "global", c
                b["attn_qkv.weight"] = src.get(p + "attn.qkv.weight", (3 * c, c))
                qb = src.opt(p + "attn.qkv.bias", (3 * c,))
                if qb is not None:
                    b["attn_qkv.bias"] = qb
                out = "attn.proj"
            else:
                raise ConvertError("block %s: neither attn.qkv.qkv.weight (bi-level routing attention) nor "
                                   "attn.qkv.weight + attn.proj.weight (global attention with LePE); other attention "
                                   "kinds are not supported" % p[:-1])
            if kind not in (None, this) or qk not in (None, q):
                raise ConvertError("block %s differs from block 0 of stage %d (attention kind or qk dim)" % (p[:-1], i))
            kind, qk = this, q
            lw, lb, k = _dw(src, p + "attn.lepe", c)
            if lce_k not in (None, k):
                raise ConvertError("tensor %sattn.lepe.weight has kernel %d, others %d" % (p, k, lce_k))
            lce_k = k
            b["attn_lce.weight"] = np.ascontiguousarray(lw[:, 0].transpose(1, 2, 0))
            b["attn_lce.bias"] = lb
            b["attn_out.weight"] = src.get(p + out + ".weight", (c, c))
            b["attn_out.bias"] = src.get(p + out + ".bias", (c,))
            b["ln2.weight"] = src.get(p + "norm2.weight", (c,))
            b["ln2.bias"] = src.get(p + "norm2.bias", (c,))
            if src.has(p + "mlp.1.conv.weight") or src.has(p + "mlp.1.weight"):
                raise ConvertError("block %s has an MLP depthwise conv (mlp_dwconv=True), which is not supported" %
                                   p[:-1])
            if src.has(p + "gamma1"):
                raise ConvertError("block %s has layer scale (gamma1/gamma2), which released BiFormers do not use and "
                                   "Sparrow does not support" % p[:-1])
            up = src.get(p + "mlp.0.weight")
            if up.ndim != 2 or up.shape[1] != c or (hidden is not None and up.shape[0] != hidden):
                raise ConvertError("tensor %smlp.0.weight has shape %s, expected [F, %d] (same F in a stage)" %
                                   (p, list(up.shape), c))
            hidden = up.shape[0]
            b["ffn_up.weight"] = up
            b["ffn_up.bias"] = src.get(p + "mlp.0.bias", (hidden,))
            b["ffn_down.weight"] = src.get(p + "mlp.3.weight", (c, hidden))
            b["ffn_down.bias"] = src.get(p + "mlp.3.bias", (c,))
            blocks.append(b)
        if depth == 0:
            raise ConvertError("stage %d has no blocks (stages.%d.0.* missing)" % (i, i))
        m["stages"].append(dict(dim=c, kind=kind, qk=qk, hidden=hidden, blocks=blocks))
    m["pos_k"], m["lce_k"] = pos_k, lce_k
    last = dims[-1]
    scale, shift = _bn(src, "norm", last, bn_eps)
    m["norm"] = (scale.astype(np.float32), shift.astype(np.float32))
    hw = src.get("head.weight")
    if hw.ndim != 2 or hw.shape[1] != last:
        raise ConvertError("tensor head.weight has shape %s, expected [K, %d]" % (list(hw.shape), last))
    m["head"] = (hw, src.get("head.bias", (hw.shape[0],)))
    return m


def per_stage(values, n, what):
    if values is None:
        return None
    if len(values) == 1:
        return [values[0]] * n
    if len(values) != n:
        raise ConvertError("--%s has %d values; give 1 or one per stage (%d)" % (what, len(values), n))
    return list(values)


def resolve(m, args):
    n = len(m["stages"])
    pre = VARIANTS[args.variant] if args.variant else None
    if pre is not None:
        have = dict(dims=[s["dim"] for s in m["stages"]], depths=[len(s["blocks"]) for s in m["stages"]])
        for k, v in have.items():
            if pre[k] != v:
                raise ConvertError("--variant %s has %s %s; the checkpoint has %s" % (args.variant, k, pre[k], v))
        for i, s in enumerate(m["stages"]):
            if (pre["topk"][i] > 0) != (s["kind"] == "bra"):
                raise ConvertError("--variant %s: stage %d should be %s" % (args.variant, i,
                                                                           "BRA" if pre["topk"][i] > 0 else "global"))
    topk = per_stage(args.topk, n, "topk") or (list(pre["topk"]) if pre else None)
    n_win = per_stage(args.n_win, n, "n-win") or [pre["n_win"] if pre else 7] * n
    heads = per_stage(args.heads, n, "heads") or (list(pre["heads"]) if pre else None)
    out_topk, out_heads, out_win = [], [], []
    for i, s in enumerate(m["stages"]):
        if s["kind"] == "bra":
            if topk is None:
                raise ConvertError("stage %d uses bi-level routing attention; its topk is not in the weights: pass "
                                   "--topk (one per stage, <= 0 for global stages) or --variant" % i)
            k, S = int(topk[i]), int(n_win[i])
            if S < 1 or not 1 <= k <= S * S:
                raise ConvertError("stage %d: topk %d must be in [1, n_win^2 = %d]" % (i, k, S * S))
            h = int(heads[i]) if heads is not None else s["qk"] // args.head_dim
            if h < 1 or s["qk"] % h or s["dim"] % h:
                raise ConvertError("stage %d: qk dim %d and dim %d must be multiples of %d heads" % (i, s["qk"],
                                                                                                     s["dim"], h))
        else:
            if topk is not None and int(topk[i]) > 0:
                raise ConvertError("stage %d is global attention (attn.proj) but --topk gives %d" % (i, topk[i]))
            k, S = int(topk[i]) if topk is not None else -2, 1
            h = int(heads[i]) if heads is not None else 8
            if h < 1 or s["dim"] % h:
                raise ConvertError("stage %d: dim %d is not a multiple of %d heads" % (i, s["dim"], h))
        out_topk.append(k)
        out_heads.append(h)
        out_win.append(S)
    return out_heads, out_topk, out_win


def build_gguf(m, hp, ftype, name):
    w = gguf.GGUFWriter()
    f32 = gguf.GGML_F32
    st = m["stages"]
    w.add_string("general.architecture", "biformer")
    w.add_string("general.name", name)
    w.add_u32("general.file_type", 0 if ftype == f32 else 1)
    w.add_u32("biformer.image_size", hp["image_size"])
    w.add_u32("biformer.num_channels", m["cin"])
    w.add_u32("biformer.block_count", sum(len(s["blocks"]) for s in st))
    w.add_array("biformer.embedding_length", [s["dim"] for s in st], gguf.GGUF_U32)
    w.add_array("biformer.depths", [len(s["blocks"]) for s in st], gguf.GGUF_U32)
    w.add_array("biformer.attention.head_count", hp["heads"], gguf.GGUF_U32)
    w.add_array("biformer.qk_dim", [s["qk"] for s in st], gguf.GGUF_U32)
    w.add_array("biformer.n_win", hp["n_win"], gguf.GGUF_U32)
    w.add_array("biformer.topk", hp["topk"], gguf.GGUF_I32)
    w.add_array("biformer.feed_forward_length", [s["hidden"] for s in st], gguf.GGUF_U32)
    w.add_u32("biformer.pos_kernel", m["pos_k"])
    w.add_u32("biformer.lce_kernel", m["lce_k"])
    w.add_u32("biformer.num_classes", m["head"][0].shape[0])
    w.add_f32("biformer.attention.layer_norm_epsilon", hp["eps"])
    if hp.get("mean") is not None:
        w.add_array("biformer.image_mean", hp["mean"], gguf.GGUF_F32)
        w.add_array("biformer.image_std", hp["std"], gguf.GGUF_F32)
    if hp.get("labels") is not None:
        w.add_array("biformer.class_labels", hp["labels"], gguf.GGUF_STRING)

    def conv(a):  # [Cout][Cin][KH][KW] -> [Cout][KH][KW][Cin]
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))

    w1, b1, w2, b2 = m["stem"]
    w.add_tensor("stem.conv1.weight", conv(w1), ftype)
    w.add_tensor("stem.conv1.bias", b1, f32)
    w.add_tensor("stem.conv2.weight", conv(w2), ftype)
    w.add_tensor("stem.conv2.bias", b2, f32)
    for i in range(1, len(st)):
        w.add_tensor("ds.%d.weight" % i, conv(m["ds"][i][0]), ftype)
        w.add_tensor("ds.%d.bias" % i, m["ds"][i][1], f32)
    n = 0
    for s in st:
        for b in s["blocks"]:
            for k, v in b.items():
                big = k.endswith(".weight") and v.ndim == 2
                w.add_tensor("blk.%d.%s" % (n, k), v, ftype if big else f32)
            n += 1
    w.add_tensor("norm.scale", m["norm"][0], f32)
    w.add_tensor("norm.shift", m["norm"][1], f32)
    w.add_tensor("head.weight", m["head"][0], ftype)
    w.add_tensor("head.bias", m["head"][1], f32)
    return w


def random_state_dict(variant, classes, seed, cin=3):
    """Random weights in the official naming for a preset (benchmarks at real shapes)."""
    pre = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    sd = OrderedDict()

    def r(*shape, scale=None):
        fan = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        s = scale if scale is not None else 1.0 / math.sqrt(max(fan, 1))
        return (rng.standard_normal(shape) * s).astype(np.float32)

    def bn(p, c):
        sd[p + ".weight"], sd[p + ".bias"] = 1 + r(c, scale=0.1), r(c, scale=0.1)
        sd[p + ".running_mean"], sd[p + ".running_var"] = r(c, scale=0.1), 1 + np.abs(r(c, scale=0.1))

    dims = pre["dims"]
    sd["downsample_layers.0.0.weight"], sd["downsample_layers.0.0.bias"] = r(dims[0] // 2, cin, 3, 3), r(dims[0] // 2)
    bn("downsample_layers.0.1", dims[0] // 2)
    sd["downsample_layers.0.3.weight"], sd["downsample_layers.0.3.bias"] = r(dims[0], dims[0] // 2, 3, 3), r(dims[0])
    bn("downsample_layers.0.4", dims[0])
    for i in range(1, len(dims)):
        sd["downsample_layers.%d.0.weight" % i] = r(dims[i], dims[i - 1], 3, 3)
        sd["downsample_layers.%d.0.bias" % i] = r(dims[i], scale=0.1)
        bn("downsample_layers.%d.1" % i, dims[i])
    for i, c in enumerate(dims):
        f = c * pre["mlp_ratio"]
        for j in range(pre["depths"][i]):
            p = "stages.%d.%d." % (i, j)
            sd[p + "pos_embed.weight"], sd[p + "pos_embed.bias"] = r(c, 1, 3, 3), r(c, scale=0.1)
            sd[p + "norm1.weight"], sd[p + "norm1.bias"] = 1 + r(c, scale=0.1), r(c, scale=0.1)
            if pre["topk"][i] > 0:
                sd[p + "attn.qkv.qkv.weight"], sd[p + "attn.qkv.qkv.bias"] = r(3 * c, c), r(3 * c, scale=0.1)
                sd[p + "attn.wo.weight"], sd[p + "attn.wo.bias"] = r(c, c), r(c, scale=0.1)
            else:
                sd[p + "attn.qkv.weight"] = r(3 * c, c)
                sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"] = r(c, c), r(c, scale=0.1)
            sd[p + "attn.lepe.weight"], sd[p + "attn.lepe.bias"] = r(c, 1, 5, 5), r(c, scale=0.1)
            sd[p + "norm2.weight"], sd[p + "norm2.bias"] = 1 + r(c, scale=0.1), r(c, scale=0.1)
            sd[p + "mlp.0.weight"], sd[p + "mlp.0.bias"] = r(f, c), r(f, scale=0.1)
            sd[p + "mlp.3.weight"], sd[p + "mlp.3.bias"] = r(c, f), r(c, scale=0.1)
    bn("norm", dims[-1])
    sd["head.weight"], sd["head.bias"] = r(classes, dims[-1]), r(classes, scale=0.1)
    return sd



def convert(args):
    src = open_source(args, random_state_dict)
    m = read_model(src, args.bn_eps)
    refuse_unused(src, IGNORABLE, args.allow_unused)
    heads, topk, n_win = resolve(m, args)
    hp = input_hparams(args, m)
    hp.update(heads=heads, topk=topk, n_win=n_win, eps=args.eps)
    image_size, K = hp["image_size"], m["head"][0].shape[0]
    size = write_model(args, build_gguf, m, hp)
    if not args.quiet:
        print("%s: BiFormer %dx%d x%d, dims %s, depths %s, heads %s, topk %s, n_win %s, %d classes, %s, %d bytes" %
              (args.output, image_size, image_size, m["cin"], [s["dim"] for s in m["stages"]],
               [len(s["blocks"]) for s in m["stages"]], heads, topk, n_win, K, args.type.upper(), size))
    return hp


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="biformer.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?", help=".pth/.pt/.bin (torch) or .safetensors")
    ap.add_argument("-o", "--output", required=True, metavar="OUT.gguf", help="output GGUF file")
    ap.add_argument("--variant", choices=sorted(VARIANTS), help="a preset (checks shapes; gives heads, topk, n_win, "
                    "image size 224, ImageNet mean/std)")
    ap.add_argument("--type", choices=("f32", "f16"), default="f32",
                    help="storage type of the Linear weights and dense conv kernels (default f32)")
    ap.add_argument("--image-size", type=int, help="nominal input side (required without --variant)")
    ap.add_argument("--topk", type=int, nargs="+", help="routed regions per stage (1 or one per stage; <= 0 for "
                    "global-attention stages)")
    ap.add_argument("--n-win", type=int, nargs="+", help="regions per side (1 or one per stage; default 7)")
    ap.add_argument("--heads", type=int, nargs="+", help="heads per stage (default qk_dim / --head-dim; 8 for "
                    "global stages)")
    ap.add_argument("--head-dim", type=int, default=32, help="default BRA head dim (default %(default)s)")
    ap.add_argument("--eps", type=float, default=1e-6, help="LayerNorm epsilon (default %(default)s)")
    ap.add_argument("--bn-eps", type=float, default=1e-5, help="BatchNorm epsilon (default %(default)s)")
    add_common_args(ap)
    return ap.parse_args(argv)


def main(argv=None):
    return run_main("biformer.py", parse_args, convert, argv)


if __name__ == "__main__":
    sys.exit(main())
