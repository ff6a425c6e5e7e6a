#!/usr/bin/python3
"""Convert a NAT / DiNAT classifier checkpoint to a Sparrow GGUF (general.architecture "nat").

Reads the official checkpoint tensor names (SHI-Labs NAT repository, classification/nat.py and
dinat.py; the .pth is a bare state dict, a dict holding it under "model"/"state_dict" is
unwrapped too):
  patch_embed.proj.{0,1}.{weight,bias}  patch_embed.norm.{weight,bias}
  levels.{i}.blocks.{j}.{norm1,norm2}.{weight,bias}  .attn.qkv.{weight,bias}  .attn.rpb
  .attn.proj.{weight,bias}  .mlp.fc1/fc2.{weight,bias}  [.gamma1 .gamma2 (layer scale)]
  levels.{i}.downsample.reduction.weight (no bias)  levels.{i}.downsample.norm.{weight,bias}
  norm.{weight,bias}  head.{weight,bias}
Dims, depths, MLP sizes and layer scale come from the tensor shapes; heads and kernel sizes
from each block's rpb [heads, 2K-1, 2K-1]. Dilations cannot be inferred: they come from
--variant (dinat_*) or --dilations (default 1 everywhere, i.e. NAT). Models without rpb need
--heads and --kernel-sizes. The layout written is models/nat/nat.h's.

Presets (--variant) check the shapes and supply heads, kernel 7, dilations, image size 224 and
ImageNet mean/std: nat_mini nat_tiny nat_small nat_base dinat_mini dinat_tiny dinat_small
dinat_base. --random writes a preset with random weights (benchmarks) instead of converting.

--type f16 stores the Linear weights and the dense conv kernels as F16; norms, biases, rpb and
layer scales stay F32. Errors (missing or misshaped tensors, inconsistent options) print one
line on stderr and exit with status 2.
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



def _dinat_dil(depths):
    pattern = [[1, 8], [1, 4], [1, 2], [1, 1]]
    return [[pattern[i][j % 2] for j in range(d)] for i, d in enumerate(depths)]


def _preset(dim, depths, heads, mlp, layer_scale, dinat):
    return dict(dim=dim, depths=depths, heads=heads, mlp_ratio=mlp, layer_scale=layer_scale, kernel=7,
                dilations=_dinat_dil(depths) if dinat else [[1] * d for d in depths])


VARIANTS = {
    "nat_mini": _preset(64, [3, 4, 6, 5], [2, 4, 8, 16], 3.0, False, False),
    "nat_tiny": _preset(64, [3, 4, 18, 5], [2, 4, 8, 16], 3.0, False, False),
    "nat_small": _preset(96, [3, 4, 18, 5], [3, 6, 12, 24], 2.0, True, False),
    "nat_base": _preset(128, [3, 4, 18, 5], [4, 8, 16, 32], 2.0, True, False),
    "dinat_mini": _preset(64, [3, 4, 6, 5], [2, 4, 8, 16], 3.0, False, True),
    "dinat_tiny": _preset(64, [3, 4, 18, 5], [2, 4, 8, 16], 3.0, False, True),
    "dinat_small": _preset(96, [3, 4, 18, 5], [3, 6, 12, 24], 2.0, False, True),
    "dinat_base": _preset(128, [3, 4, 18, 5], [4, 8, 16, 32], 2.0, True, True),
}

IGNORABLE = (r"num_batches_tracked$", r"(^|\.)relative_position_index$")



def _conv(src, name, cout, cin, bias=True):
    w = src.get(name + ".weight")
    if w.ndim != 4 or w.shape[2:] != (3, 3) or (cout is not None and w.shape[0] != cout) or \
            (cin is not None and w.shape[1] != cin):
        raise ConvertError("tensor %s.weight has shape %s, expected [%s, %s, 3, 3]" %
                           (name, list(w.shape), cout or "Cout", cin or "Cin"))
    b = src.get(name + ".bias", (w.shape[0],)) if bias else None
    return w, b


def read_model(src):
    """Official NAT tensors -> canonical dict (PyTorch layouts)."""
    if not src.has("patch_embed.proj.0.weight"):
        raise ConvertError("not a NAT/DiNAT checkpoint: tensor patch_embed.proj.0.weight is missing from %s" % src.path)
    w0, b0 = _conv(src, "patch_embed.proj.0", None, None)
    half, cin = w0.shape[0], w0.shape[1]
    w1, b1 = _conv(src, "patch_embed.proj.1", None, half)
    dim = w1.shape[0]
    if dim != 2 * half:
        raise ConvertError("tensor patch_embed.proj.1.weight has %d output channels, expected 2 x %d" % (dim, half))
    m = dict(cin=cin, dim=dim, tok=(w0, b0, w1, b1, src.get("patch_embed.norm.weight", (dim,)),
                                    src.get("patch_embed.norm.bias", (dim,))), levels=[])
    n_levels = count_indexed(src, "levels.%d.")
    if n_levels == 0:
        raise ConvertError("no levels.{i}.blocks.* tensors in %s" % src.path)
    hidden = []
    for i in range(n_levels):
        d = dim * 2 ** i
        depth = count_indexed(src, "levels.%d.blocks.%d.", i)
        if depth == 0:
            raise ConvertError("level %d has no blocks (levels.%d.blocks.0.* missing)" % (i, i))
        blocks = []
        for j in range(depth):
            p = "levels.%d.blocks.%d." % (i, j)
            b = OrderedDict()
            b["ln1.weight"] = src.get(p + "norm1.weight", (d,))
            b["ln1.bias"] = src.get(p + "norm1.bias", (d,))
            b["attn_qkv.weight"] = src.get(p + "attn.qkv.weight", (3 * d, d))
            qb = src.opt(p + "attn.qkv.bias", (3 * d,))
            if qb is not None:
                b["attn_qkv.bias"] = qb
            rpb = src.opt(p + "attn.rpb")
            if rpb is not None:
                if rpb.ndim != 3 or rpb.shape[1] != rpb.shape[2] or rpb.shape[1] % 2 == 0:
                    raise ConvertError("tensor %sattn.rpb has shape %s, expected [heads, 2K-1, 2K-1]" %
                                       (p, list(rpb.shape)))
                b["attn_rpb"] = rpb
            b["attn_out.weight"] = src.get(p + "attn.proj.weight", (d, d))
            b["attn_out.bias"] = src.get(p + "attn.proj.bias", (d,))
            b["ln2.weight"] = src.get(p + "norm2.weight", (d,))
            b["ln2.bias"] = src.get(p + "norm2.bias", (d,))
            up = src.get(p + "mlp.fc1.weight")
            if up.ndim != 2 or up.shape[1] != d:
                raise ConvertError("tensor %smlp.fc1.weight has shape %s, expected [F, %d]" % (p, list(up.shape), d))
            f = up.shape[0]
            if j == 0:
                hidden.append(f)
            elif f != hidden[i]:
                raise ConvertError("tensor %smlp.fc1.weight has %d rows; block 0 of level %d has %d" %
                                   (p, f, i, hidden[i]))
            b["ffn_up.weight"] = up
            b["ffn_up.bias"] = src.get(p + "mlp.fc1.bias", (f,))
            b["ffn_down.weight"] = src.get(p + "mlp.fc2.weight", (d, f))
            b["ffn_down.bias"] = src.get(p + "mlp.fc2.bias", (d,))
            g1, g2 = src.opt(p + "gamma1", (d,)), src.opt(p + "gamma2", (d,))
            if (g1 is None) != (g2 is None):
                raise ConvertError("block %s has only one of gamma1 / gamma2" % p[:-1])
            if g1 is not None:
                b["gamma1"], b["gamma2"] = g1, g2
            blocks.append(b)
        ds = None
        if i < n_levels - 1:
            p = "levels.%d.downsample." % i
            ds = (src.get(p + "reduction.weight", (2 * d, d, 3, 3)), src.get(p + "norm.weight", (2 * d,)),
                  src.get(p + "norm.bias", (2 * d,)))
            if src.has(p + "reduction.bias"):
                raise ConvertError("tensor %sreduction.bias: the NAT downsampler has no bias" % p)
        elif src.has("levels.%d.downsample.reduction.weight" % i):
            raise ConvertError("the last level (%d) has a downsampler; Sparrow's NAT expects none" % i)
        m["levels"].append(dict(dim=d, blocks=blocks, ds=ds))
    last = dim * 2 ** (n_levels - 1)
    m["hidden"] = hidden
    m["norm"] = (src.get("norm.weight", (last,)), src.get("norm.bias", (last,)))
    hw = src.get("head.weight")
    if hw.ndim != 2 or hw.shape[1] != last:
        raise ConvertError("tensor head.weight has shape %s, expected [K, %d]" % (list(hw.shape), last))
    m["head"] = (hw, src.get("head.bias", (hw.shape[0],)))
    return m


def per_block(values, depths, what):
    """A flat list (one per block, levels in order), one value, or None -> list of lists."""
    if values is None:
        return None
    if len(values) == 1:
        return [[values[0]] * d for d in depths]
    if len(values) != sum(depths):
        raise ConvertError("--%s has %d values; give 1 or one per block (%d)" % (what, len(values), sum(depths)))
    out, off = [], 0
    for d in depths:
        out.append(list(values[off:off + d]))
        off += d
    return out


def resolve(m, args):
    """Per-level heads, per-block kernels and dilations; checks the preset."""
    depths = [len(lv["blocks"]) for lv in m["levels"]]
    pre = VARIANTS[args.variant] if args.variant else None
    if pre is not None:
        if pre["dim"] != m["dim"] or pre["depths"] != depths:
            raise ConvertError("--variant %s has dim %d and depths %s; the checkpoint has %d and %s" %
                               (args.variant, pre["dim"], pre["depths"], m["dim"], depths))
        want = [int(pre["dim"] * 2 ** i * pre["mlp_ratio"]) for i in range(len(depths))]
        if want != m["hidden"]:
            raise ConvertError("--variant %s has MLP sizes %s; the checkpoint has %s" % (args.variant, want, m["hidden"]))
        has_ls = "gamma1" in m["levels"][0]["blocks"][0]
        if has_ls != pre["layer_scale"]:
            raise ConvertError("--variant %s %s layer scale, the checkpoint %s" % (
                args.variant, "has" if pre["layer_scale"] else "has no", "does" if has_ls else "does not"))
    heads = list(args.heads) if args.heads else (list(pre["heads"]) if pre else None)
    if heads is not None and len(heads) != len(depths):
        raise ConvertError("--heads has %d values for %d levels" % (len(heads), len(depths)))
    kernels = per_block(args.kernel_sizes, depths, "kernel-sizes") or \
        ([[pre["kernel"]] * d for d in depths] if pre else None)
    dil = per_block(args.dilations, depths, "dilations") or (pre["dilations"] if pre else [[1] * d for d in depths])
    out_heads, out_k = [], []
    for i, lv in enumerate(m["levels"]):
        ks = []
        for j, b in enumerate(lv["blocks"]):
            name = "levels.%d.blocks.%d.attn.rpb" % (i, j)
            rpb = b.get("attn_rpb")
            if rpb is not None:
                h, k = rpb.shape[0], (rpb.shape[1] + 1) // 2
                if heads is not None and heads[i] != h:
                    raise ConvertError("tensor %s has %d heads; --heads/--variant say %d" % (name, h, heads[i]))
                if kernels is not None and kernels[i][j] != k:
                    raise ConvertError("tensor %s implies kernel %d; --kernel-sizes/--variant say %d" %
                                       (name, k, kernels[i][j]))
                if j == 0:
                    out_heads.append(h)
                elif h != out_heads[i]:
                    raise ConvertError("tensor %s has %d heads; block 0 of level %d has %d" % (name, h, i,
                                                                                              out_heads[i]))
            else:
                if heads is None or kernels is None:
                    raise ConvertError("block levels.%d.blocks.%d has no rpb: pass --heads and --kernel-sizes (or "
                                       "--variant)" % (i, j))
                if j == 0:
                    out_heads.append(heads[i])
                k = kernels[i][j]
            ks.append(k)
        if lv["dim"] % out_heads[i]:
            raise ConvertError("level %d: dim %d is not a multiple of %d heads" % (i, lv["dim"], out_heads[i]))
        out_k.append(ks)
    for i, ks in enumerate(out_k):
        for j, k in enumerate(ks):
            if k < 1 or dil[i][j] < 1:
                raise ConvertError("levels.%d.blocks.%d: kernel %d / dilation %d must be positive" % (i, j, k,
                                                                                                    dil[i][j]))
    return out_heads, out_k, dil


def build_gguf(m, hp, ftype, name):
    w = gguf.GGUFWriter()
    f32 = gguf.GGML_F32
    w.add_string("general.architecture", "nat")
    w.add_string("general.name", name)
    w.add_u32("general.file_type", 0 if ftype == f32 else 1)
    w.add_u32("nat.image_size", hp["image_size"])
    w.add_u32("nat.num_channels", m["cin"])
    w.add_u32("nat.embedding_length", m["dim"])
    w.add_u32("nat.block_count", sum(len(lv["blocks"]) for lv in m["levels"]))
    w.add_array("nat.depths", [len(lv["blocks"]) for lv in m["levels"]], gguf.GGUF_U32)
    w.add_array("nat.attention.head_count", hp["heads"], gguf.GGUF_U32)
    w.add_array("nat.feed_forward_length", m["hidden"], gguf.GGUF_U32)
    w.add_array("nat.kernel_sizes", [k for ks in hp["kernels"] for k in ks], gguf.GGUF_U32)
    w.add_array("nat.dilations", [d for ds in hp["dilations"] for d in ds], gguf.GGUF_U32)
    w.add_u32("nat.num_classes", m["head"][0].shape[0])
    w.add_f32("nat.attention.layer_norm_epsilon", hp["eps"])
    if hp.get("mean") is not None:
        w.add_array("nat.image_mean", hp["mean"], gguf.GGUF_F32)
        w.add_array("nat.image_std", hp["std"], gguf.GGUF_F32)
    if hp.get("labels") is not None:
        w.add_array("nat.class_labels", hp["labels"], gguf.GGUF_STRING)

    def conv(a):  # [Cout][Cin][KH][KW] -> [Cout][KH][KW][Cin]
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))

    w0, b0, w1, b1, nw, nb = m["tok"]
    w.add_tensor("tok.conv1.weight", conv(w0), ftype)
    w.add_tensor("tok.conv1.bias", b0, f32)
    w.add_tensor("tok.conv2.weight", conv(w1), ftype)
    w.add_tensor("tok.conv2.bias", b1, f32)
    w.add_tensor("tok.norm.weight", nw, f32)
    w.add_tensor("tok.norm.bias", nb, f32)
    n = 0
    for i, lv in enumerate(m["levels"]):
        for b in lv["blocks"]:
            for k, v in b.items():
                big = k.endswith(".weight") and v.ndim == 2
                w.add_tensor("blk.%d.%s" % (n, k), v, ftype if big else f32)
            n += 1
        if lv["ds"] is not None:
            w.add_tensor("ds.%d.weight" % i, conv(lv["ds"][0]), ftype)
            w.add_tensor("ds.%d.norm.weight" % i, lv["ds"][1], f32)
            w.add_tensor("ds.%d.norm.bias" % i, lv["ds"][2], f32)
    w.add_tensor("norm.weight", m["norm"][0], f32)
    w.add_tensor("norm.bias", m["norm"][1], f32)
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

    dim = pre["dim"]
    sd["patch_embed.proj.0.weight"], sd["patch_embed.proj.0.bias"] = r(dim // 2, cin, 3, 3), r(dim // 2, scale=0.1)
    sd["patch_embed.proj.1.weight"], sd["patch_embed.proj.1.bias"] = r(dim, dim // 2, 3, 3), r(dim, scale=0.1)
    sd["patch_embed.norm.weight"], sd["patch_embed.norm.bias"] = 1 + r(dim, scale=0.1), r(dim, scale=0.1)
    n_levels = len(pre["depths"])
    for i in range(n_levels):
        d, h, f = dim * 2 ** i, pre["heads"][i], int(dim * 2 ** i * pre["mlp_ratio"])
        for j in range(pre["depths"][i]):
            p = "levels.%d.blocks.%d." % (i, j)
            sd[p + "norm1.weight"], sd[p + "norm1.bias"] = 1 + r(d, scale=0.1), r(d, scale=0.1)
            sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"] = r(3 * d, d), r(3 * d, scale=0.1)
            sd[p + "attn.rpb"] = r(h, 13, 13, scale=0.1)
            sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"] = r(d, d), r(d, scale=0.1)
            sd[p + "norm2.weight"], sd[p + "norm2.bias"] = 1 + r(d, scale=0.1), r(d, scale=0.1)
            sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"] = r(f, d), r(f, scale=0.1)
            sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"] = r(d, f), r(d, scale=0.1)
            if pre["layer_scale"]:
                sd[p + "gamma1"], sd[p + "gamma2"] = np.full(d, 1e-5, np.float32), np.full(d, 1e-5, np.float32)
        if i < n_levels - 1:
            p = "levels.%d.downsample." % i
            sd[p + "reduction.weight"] = r(2 * d, d, 3, 3)
            sd[p + "norm.weight"], sd[p + "norm.bias"] = 1 + r(2 * d, scale=0.1), r(2 * d, scale=0.1)
    last = dim * 2 ** (n_levels - 1)
    sd["norm.weight"], sd["norm.bias"] = 1 + r(last, scale=0.1), r(last, scale=0.1)
    sd["head.weight"], sd["head.bias"] = r(classes, last), r(classes, scale=0.1)
    return sd



def convert(args):
    src = open_source(args, random_state_dict)
    m = read_model(src)
    refuse_unused(src, IGNORABLE, args.allow_unused)
    heads, kernels, dil = resolve(m, args)
    hp = input_hparams(args, m)
    hp.update(heads=heads, kernels=kernels, dilations=dil, eps=args.eps)
    image_size, K = hp["image_size"], m["head"][0].shape[0]
    size = write_model(args, build_gguf, m, hp)
    if not args.quiet:
        print("%s: NAT %dx%d x%d, dims %s, depths %s, heads %s, kernels %s, dilations %s%s, %d classes, %s, %d bytes" %
              (args.output, image_size, image_size, m["cin"], [lv["dim"] for lv in m["levels"]],
               [len(lv["blocks"]) for lv in m["levels"]], heads, kernels, dil,
               ", layer scale" if "gamma1" in m["levels"][0]["blocks"][0] else "", K, args.type.upper(), size))
    return hp


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="nat.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?", help=".pth/.pt/.bin (torch) or .safetensors")
    ap.add_argument("-o", "--output", required=True, metavar="OUT.gguf", help="output GGUF file")
    ap.add_argument("--variant", choices=sorted(VARIANTS), help="a preset (checks shapes; gives heads, kernel, "
                    "dilations, image size 224, ImageNet mean/std)")
    ap.add_argument("--type", choices=("f32", "f16"), default="f32",
                    help="storage type of the Linear weights and conv kernels (default f32)")
    ap.add_argument("--image-size", type=int, help="nominal input side (required without --variant)")
    ap.add_argument("--heads", type=int, nargs="+", help="heads per level (default: from rpb)")
    ap.add_argument("--kernel-sizes", type=int, nargs="+", help="kernel size: 1 value or one per block (default: "
                    "from rpb)")
    ap.add_argument("--dilations", type=int, nargs="+", help="dilation: 1 value or one per block, levels in order "
                    "(default: the variant's, else 1)")
    ap.add_argument("--eps", type=float, default=1e-5, help="LayerNorm epsilon (default %(default)s)")
    add_common_args(ap)
    return ap.parse_args(argv)


def main(argv=None):
    return run_main("nat.py", parse_args, convert, argv)


if __name__ == "__main__":
    sys.exit(main())
