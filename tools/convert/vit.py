#!/usr/bin/python3
"""Convert a ViT / DeiT classifier checkpoint to a Sparrow GGUF (general.architecture "vit").

Accepted checkpoints (the naming scheme is detected from the tensor names):
  timm      VisionTransformer / DeiT: patch_embed.proj, cls_token, pos_embed, blocks.N.{norm1,
            attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head; distilled DeiT adds
            dist_token + head_dist; global_pool='avg' models have fc_norm (-> "mean" pooling);
            LayerScale (blocks.N.ls1/ls2.gamma) is folded into attn.proj / mlp.fc2.
  torchvision vit_b_16 style: conv_proj, class_token, encoder.pos_embedding,
            encoder.layers.encoder_layer_N.{ln_1, self_attention.in_proj_*, self_attention.out_proj,
            ln_2, mlp.0/mlp.3 or mlp.linear_1/linear_2}, encoder.ln, heads.head.
  Hugging Face ViTForImageClassification (vit.embeddings..., attention.attention.query/key/value,
            attention.output.dense, intermediate.dense, output.dense, layernorm_before/after,
            vit.layernorm, classifier) and DeiTForImageClassificationWithTeacher (deit.*,
            distillation_token, cls_classifier, distillation_classifier). config.json next to the
            checkpoint gives heads, eps, labels; preprocessor_config.json gives mean/std.
Files: .safetensors (read with numpy: F32/F16/BF16), or .pth/.pt/.bin (torch.load on the CPU,
weights only unless --trust-pickle; a dict holding the state dict under "model", "state_dict",
"model_state_dict" or "module" is unwrapped, and a leading "module." prefix is dropped).

Dimensions come from the tensor shapes; the head count cannot, so it comes from --heads or
config.json. Image size = grid * patch where grid^2 + prefix tokens = pos_embed rows.
--type f16 stores the Linear weights and the patch kernel as F16; norms, biases, tokens and
pos_embd stay F32. Errors (missing or misshaped tensors, unsupported features) print one line
on stderr and exit with status 2.
"""

import argparse
import json
import math
import os
import re
import struct
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# checkpoint loading


_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
              "U8": "u1", "BOOL": "?"}


def load_safetensors(path):
    """safetensors: u64 header length, JSON header {name: {dtype, shape, data_offsets}}, raw data."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ConvertError("%s: too short for a safetensors file" % path)
    (n,) = struct.unpack("<Q", buf[:8])
    if n > len(buf) - 8:
        raise ConvertError("%s: safetensors header length %d exceeds the file" % (path, n))
    try:
        header = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ConvertError("%s: bad safetensors header (%s)" % (path, e))
    base = 8 + n
    out = OrderedDict()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not 0 <= b <= e <= len(buf) - base:
            raise ConvertError("%s: tensor %s data is out of range" % (path, name))
        raw = buf[base + b:base + e]
        if dt == "BF16":
            if len(raw) != 2 * count:
                raise ConvertError("%s: tensor %s has %d bytes for %d bf16 values" % (path, name, len(raw), count))
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt in _ST_DTYPES:
            a = np.frombuffer(raw, dtype=_ST_DTYPES[dt])
            if a.size != count:
                raise ConvertError("%s: tensor %s has %d values, shape %s needs %d" % (path, name, a.size, shape,
                                                                                      count))
        else:
            raise ConvertError("%s: tensor %s has unsupported dtype %s" % (path, name, dt))
        out[name] = a.reshape(shape)
    return out


def load_torch(path, trust_pickle):
    try:
        import torch
    except ImportError:
        raise ConvertError("reading %s needs PyTorch (python3-torch)" % path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = "" if trust_pickle else " (if the file is trusted and holds more than tensors, retry with --trust-pickle)"
        raise ConvertError("%s: torch.load failed: %s%s" % (path, msg, hint))
    if hasattr(obj, "state_dict") and not isinstance(obj, dict):
        obj = obj.state_dict()
    for key in ("model", "state_dict", "model_state_dict", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ConvertError("%s: does not hold a state dict" % path)
    out = OrderedDict()
    for k, v in obj.items():
        if not hasattr(v, "detach"):
            continue
        v = v.detach().cpu()
        if v.is_floating_point():
            v = v.float()
        out[k] = v.numpy()
    return out


def load_checkpoint(path, trust_pickle=False):
    if not os.path.isfile(path):
        raise ConvertError("%s: no such file" % path)
    if path.endswith(".safetensors"):
        sd = load_safetensors(path)
    else:
        sd = load_torch(path, trust_pickle)
    if sd and all(k.startswith("module.") for k in sd):
        sd = OrderedDict((k[len("module."):], v) for k, v in sd.items())
    if not sd:
        raise ConvertError("%s: holds no tensors" % path)
    return sd


# ---------------------------------------------------------------------------------------------
# naming schemes -> canonical tensors


class Source:
    """Checkpoint tensors with use tracking and named shape errors."""

    def __init__(self, sd, path):
        self.sd, self.path, self.used = sd, path, set()

    def has(self, name):
        return name in self.sd

    def get(self, name, shape=None):
        if name not in self.sd:
            raise ConvertError("tensor %s is missing from %s" % (name, self.path))
        a = self.sd[name]
        self.used.add(name)
        if not np.issubdtype(a.dtype, np.floating):
            raise ConvertError("tensor %s has dtype %s, expected floating point" % (name, a.dtype))
        if shape is not None and tuple(a.shape) != tuple(shape):
            raise ConvertError("tensor %s has shape %s, expected %s" % (name, list(a.shape), list(shape)))
        return np.asarray(a, dtype=np.float32)

    def opt(self, name, shape=None):
        return self.get(name, shape) if name in self.sd else None

    def count(self, fmt):
        n = 0
        while any(k.startswith(fmt % n) for k in self.sd):
            n += 1
        return n

    def unused(self, ignore=()):
        return [k for k in self.sd if k not in self.used and not any(re.search(p, k) for p in ignore)]


def detect_scheme(sd):
    if "patch_embed.proj.weight" in sd:
        return "timm"
    if "conv_proj.weight" in sd and "encoder.pos_embedding" in sd:
        return "torchvision"
    for pre in ("vit.", "deit.", ""):
        if pre + "embeddings.patch_embeddings.projection.weight" in sd:
            return "hf"
    raise ConvertError("unrecognized checkpoint: no patch_embed.proj.weight (timm), conv_proj.weight (torchvision) "
                       "or embeddings.patch_embeddings.projection.weight (Hugging Face)")


def _patch(src, name_w, name_b):
    w = src.get(name_w)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise ConvertError("tensor %s has shape %s, expected [D, C, P, P]" % (name_w, list(w.shape)))
    d = w.shape[0]
    b = src.opt(name_b, (d,))
    return w, (b if b is not None else np.zeros(d, np.float32))


def _token(src, name, d):
    a = src.get(name)
    if a.size != d or a.ndim not in (1, 2, 3):
        raise ConvertError("tensor %s has shape %s, expected [1, 1, %d]" % (name, list(a.shape), d))
    return a.reshape(d)


def _pos(src, name, d):
    a = src.get(name)
    if a.ndim not in (2, 3) or a.shape[-1] != d or (a.ndim == 3 and a.shape[0] != 1):
        raise ConvertError("tensor %s has shape %s, expected [1, T, %d]" % (name, list(a.shape), d))
    return a.reshape(-1, d)


def _blocks_common(src, n, d, names):
    """names(l) -> dict with keys ln1_w ln1_b qkv (callable returning (w,b)) out_w out_b ln2_w ln2_b up_w up_b
    down_w down_b. Returns canonical per-layer tensors and F."""
    blocks, ffn = [], None
    for l in range(n):
        nm = names(l)
        blk = OrderedDict()
        blk["ln1.weight"] = src.get(nm["ln1_w"], (d,))
        blk["ln1.bias"] = src.get(nm["ln1_b"], (d,))
        qw, qb = nm["qkv"](l)
        blk["attn_qkv.weight"] = qw
        if qb is not None:
            blk["attn_qkv.bias"] = qb
        blk["attn_out.weight"] = src.get(nm["out_w"], (d, d))
        ob = src.opt(nm["out_b"], (d,))
        if ob is not None:
            blk["attn_out.bias"] = ob
        blk["ln2.weight"] = src.get(nm["ln2_w"], (d,))
        blk["ln2.bias"] = src.get(nm["ln2_b"], (d,))
        up = src.get(nm["up_w"])
        if up.ndim != 2 or up.shape[1] != d:
            raise ConvertError("tensor %s has shape %s, expected [F, %d]" % (nm["up_w"], list(up.shape), d))
        if ffn is None:
            ffn = up.shape[0]
        elif up.shape[0] != ffn:
            raise ConvertError("tensor %s has shape %s, expected [%d, %d]" % (nm["up_w"], list(up.shape), ffn, d))
        blk["ffn_up.weight"] = up
        ub = src.opt(nm["up_b"], (ffn,))
        if ub is not None:
            blk["ffn_up.bias"] = ub
        blk["ffn_down.weight"] = src.get(nm["down_w"], (d, ffn))
        db = src.opt(nm["down_b"], (d,))
        if db is not None:
            blk["ffn_down.bias"] = db
        blocks.append(blk)
    return blocks, ffn


def _head(src, name_w, name_b, d):
    w = src.get(name_w)
    if w.ndim != 2 or w.shape[1] != d:
        raise ConvertError("tensor %s has shape %s, expected [K, %d]" % (name_w, list(w.shape), d))
    b = src.opt(name_b, (w.shape[0],))
    return w, b


def from_timm(src, info):
    pw, pb = _patch(src, "patch_embed.proj.weight", "patch_embed.proj.bias")
    d = pw.shape[0]
    for bad, what in (("reg_token", "register tokens"), ("attn_pool.", "attention pooling (global_pool='map')"),
                      ("norm_pre.", "a pre-norm before the blocks"), ("patch_embed.norm.", "a patch-embedding norm")):
        if any(k.startswith(bad) for k in src.sd):
            raise ConvertError("this timm model uses %s (%s*), which Sparrow's ViT does not support" % (what, bad))
    for k in src.sd:
        if re.match(r"blocks\.\d+\.(attn\.(q_norm|k_norm)|norm1_post|norm2_post|attn\.norm|mlp\.norm)\.", k):
            raise ConvertError("tensor %s: this timm model has extra norms that Sparrow's ViT does not support" % k)
        if re.match(r"blocks\.\d+\.mlp\.fc1_[gx]\.", k):
            raise ConvertError("tensor %s: gated (SwiGLU) MLPs are not supported" % k)
    t = OrderedDict(cls_token=_token(src, "cls_token", d))
    distilled = src.has("dist_token")
    if distilled:
        t["dist_token"] = _token(src, "dist_token", d)
    pos = _pos(src, "pos_embed", d)
    depth = src.count("blocks.%d.")

    def qkv(l):
        w = src.get("blocks.%d.attn.qkv.weight" % l, (3 * d, d))
        b = src.opt("blocks.%d.attn.qkv.bias" % l, (3 * d,))
        if b is None and src.has("blocks.%d.attn.q_bias" % l):  # BEiT-style q/v biases, no k bias
            b = np.concatenate([src.get("blocks.%d.attn.q_bias" % l, (d,)), np.zeros(d, np.float32),
                                src.get("blocks.%d.attn.v_bias" % l, (d,))])
        return w, b

    def names(l):
        p = "blocks.%d." % l
        return dict(ln1_w=p + "norm1.weight", ln1_b=p + "norm1.bias", qkv=qkv, out_w=p + "attn.proj.weight",
                    out_b=p + "attn.proj.bias", ln2_w=p + "norm2.weight", ln2_b=p + "norm2.bias",
                    up_w=p + "mlp.fc1.weight", up_b=p + "mlp.fc1.bias", down_w=p + "mlp.fc2.weight",
                    down_b=p + "mlp.fc2.bias")

    blocks, ffn = _blocks_common(src, depth, d, names)
    for l, blk in enumerate(blocks):  # LayerScale: x + g * (W a + b) == x + (g W) a + g b
        for ls, wname in (("ls1", "attn_out"), ("ls2", "ffn_down")):
            g = src.opt("blocks.%d.%s.gamma" % (l, ls), (d,))
            if g is not None:
                blk[wname + ".weight"] = blk[wname + ".weight"] * g[:, None]
                blk[wname + ".bias"] = blk.get(wname + ".bias", np.zeros(d, np.float32)) * g
    if src.has("fc_norm.weight"):
        info.setdefault("pool_hint", "mean")
        if src.has("norm.weight"):
            raise ConvertError("checkpoint has both norm.* and fc_norm.*; Sparrow's ViT applies one final norm")
        norm = (src.get("fc_norm.weight", (d,)), src.get("fc_norm.bias", (d,)))
    else:
        info.setdefault("pool_hint", "cls")
        norm = (src.get("norm.weight", (d,)), src.get("norm.bias", (d,)))
    if not src.has("head.weight"):
        raise ConvertError("tensor head.weight is missing from %s (a model without a classifier head cannot be "
                           "converted)" % src.path)
    head = _head(src, "head.weight", "head.bias", d)
    head_dist = None
    if distilled:
        head_dist = _head(src, "head_dist.weight", "head_dist.bias", d)
    return dict(patch=(pw, pb), tokens=t, pos=pos, blocks=blocks, ffn=ffn, norm=norm, head=head,
                head_dist=head_dist, distilled=distilled)


def from_torchvision(src, info):
    pw, pb = _patch(src, "conv_proj.weight", "conv_proj.bias")
    d = pw.shape[0]
    t = OrderedDict(cls_token=_token(src, "class_token", d))
    pos = _pos(src, "encoder.pos_embedding", d)
    pre = "encoder.layers.encoder_layer_%d."
    depth = src.count(pre)
    if src.has("heads.pre_logits.weight"):
        raise ConvertError("tensor heads.pre_logits.weight: torchvision representation_size heads are not supported")

    def qkv(l):
        return (src.get(pre % l + "self_attention.in_proj_weight", (3 * d, d)),
                src.opt(pre % l + "self_attention.in_proj_bias", (3 * d,)))

    def names(l):
        p = pre % l
        mlp = ("mlp.0", "mlp.3") if src.has(p + "mlp.0.weight") or not src.has(p + "mlp.linear_1.weight") \
            else ("mlp.linear_1", "mlp.linear_2")
        return dict(ln1_w=p + "ln_1.weight", ln1_b=p + "ln_1.bias", qkv=qkv,
                    out_w=p + "self_attention.out_proj.weight", out_b=p + "self_attention.out_proj.bias",
                    ln2_w=p + "ln_2.weight", ln2_b=p + "ln_2.bias", up_w=p + mlp[0] + ".weight",
                    up_b=p + mlp[0] + ".bias", down_w=p + mlp[1] + ".weight", down_b=p + mlp[1] + ".bias")

    blocks, ffn = _blocks_common(src, depth, d, names)
    norm = (src.get("encoder.ln.weight", (d,)), src.get("encoder.ln.bias", (d,)))
    head = _head(src, "heads.head.weight", "heads.head.bias", d)
    info.setdefault("pool_hint", "cls")
    return dict(patch=(pw, pb), tokens=t, pos=pos, blocks=blocks, ffn=ffn, norm=norm, head=head, head_dist=None,
                distilled=False)


def from_hf(src, info):
    pre = next(p for p in ("vit.", "deit.", "") if src.has(p + "embeddings.patch_embeddings.projection.weight"))
    e = pre + "embeddings."
    pw, pb = _patch(src, e + "patch_embeddings.projection.weight", e + "patch_embeddings.projection.bias")
    d = pw.shape[0]
    t = OrderedDict(cls_token=_token(src, e + "cls_token", d))
    distilled = src.has(e + "distillation_token")
    if distilled:
        t["dist_token"] = _token(src, e + "distillation_token", d)
    if src.has(e + "mask_token"):
        src.used.add(e + "mask_token")  # only used for masked image modelling
    pos = _pos(src, e + "position_embeddings", d)
    lp = pre + "encoder.layer.%d."
    depth = src.count(lp)

    def qkv(l):
        a = lp % l + "attention.attention."
        w = np.concatenate([src.get(a + n + ".weight", (d, d)) for n in ("query", "key", "value")])
        bs = [src.opt(a + n + ".bias", (d,)) for n in ("query", "key", "value")]
        if all(b is None for b in bs):
            return w, None
        return w, np.concatenate([b if b is not None else np.zeros(d, np.float32) for b in bs])

    def names(l):
        p = lp % l
        return dict(ln1_w=p + "layernorm_before.weight", ln1_b=p + "layernorm_before.bias", qkv=qkv,
                    out_w=p + "attention.output.dense.weight", out_b=p + "attention.output.dense.bias",
                    ln2_w=p + "layernorm_after.weight", ln2_b=p + "layernorm_after.bias",
                    up_w=p + "intermediate.dense.weight", up_b=p + "intermediate.dense.bias",
                    down_w=p + "output.dense.weight", down_b=p + "output.dense.bias")

    blocks, ffn = _blocks_common(src, depth, d, names)
    norm = (src.get(pre + "layernorm.weight", (d,)), src.get(pre + "layernorm.bias", (d,)))
    head_dist = None
    if distilled:
        head = _head(src, "cls_classifier.weight", "cls_classifier.bias", d)
        head_dist = _head(src, "distillation_classifier.weight", "distillation_classifier.bias", d)
    else:
        if not src.has("classifier.weight"):
            raise ConvertError("tensor classifier.weight is missing from %s (ViTModel without a classifier head "
                               "cannot be converted)" % src.path)
        head = _head(src, "classifier.weight", "classifier.bias", d)
    info.setdefault("pool_hint", "cls")
    return dict(patch=(pw, pb), tokens=t, pos=pos, blocks=blocks, ffn=ffn, norm=norm, head=head,
                head_dist=head_dist, distilled=distilled)


SCHEMES = {"timm": from_timm, "torchvision": from_torchvision, "hf": from_hf}
# Tensors that may be present and are not needed for inference.
IGNORABLE = (r"(^|\.)position_ids$", r"^(vit|deit)\.pooler\.", r"num_batches_tracked$")


# ---------------------------------------------------------------------------------------------
# side files (Hugging Face config.json / preprocessor_config.json, labels)


def read_json_near(ckpt, name):
    p = os.path.join(os.path.dirname(os.path.abspath(ckpt)), name)
    if not os.path.isfile(p):
        return None, p
    try:
        with open(p, encoding="utf-8") as f:
            return json.load(f), p
    except ValueError as e:
        raise ConvertError("%s: bad JSON (%s)" % (p, e))


def read_labels(path):
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ConvertError("cannot read labels: %s" % e)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


# ---------------------------------------------------------------------------------------------
# GGUF output


def build_gguf(m, hp, ftype, name):
    D, C, P = hp["dim"], hp["channels"], hp["patch"]
    w = gguf.GGUFWriter()
    w.add_string("general.architecture", "vit")
    w.add_string("general.name", name)
    w.add_u32("general.file_type", 0 if ftype == gguf.GGML_F32 else 1)
    w.add_u32("vit.image_size", hp["image_size"])
    w.add_u32("vit.num_channels", C)
    w.add_u32("vit.patch_size", P)
    w.add_u32("vit.embedding_length", D)
    w.add_u32("vit.block_count", hp["depth"])
    w.add_u32("vit.attention.head_count", hp["heads"])
    w.add_u32("vit.feed_forward_length", hp["ffn"])
    w.add_u32("vit.num_classes", hp["classes"])
    w.add_string("vit.pooling", hp["pool"])
    w.add_f32("vit.attention.layer_norm_epsilon", hp["eps"])
    w.add_f32("vit.attention.scale", hp["scale"])
    w.add_bool("vit.distilled", hp["distilled"])
    if hp.get("mean") is not None:
        w.add_array("vit.image_mean", hp["mean"], gguf.GGUF_F32)
        w.add_array("vit.image_std", hp["std"], gguf.GGUF_F32)
    if hp.get("labels") is not None:
        w.add_array("vit.class_labels", hp["labels"], gguf.GGUF_STRING)

    f32 = gguf.GGML_F32
    pw, pb = m["patch"]
    w.add_tensor("patch_embd.weight", np.ascontiguousarray(pw.transpose(0, 2, 3, 1)), ftype)  # [D][P][P][C]
    w.add_tensor("patch_embd.bias", pb, f32)
    for k, v in m["tokens"].items():
        w.add_tensor(k, v, f32)
    w.add_tensor("pos_embd", m["pos"], f32)
    for l, blk in enumerate(m["blocks"]):
        for k, v in blk.items():
            big = k.endswith(".weight") and v.ndim == 2
            w.add_tensor("blk.%d.%s" % (l, k), v, ftype if big else f32)
    w.add_tensor("norm.weight", m["norm"][0], f32)
    w.add_tensor("norm.bias", m["norm"][1], f32)
    for key, hd in (("head", m["head"]), ("head_dist", m["head_dist"])):
        if hd is None:
            continue
        w.add_tensor(key + ".weight", hd[0], ftype)
        if hd[1] is not None:
            w.add_tensor(key + ".bias", hd[1], f32)
    return w


def convert(args):
    sd = load_checkpoint(args.checkpoint, args.trust_pickle)
    scheme = detect_scheme(sd)
    src = Source(sd, args.checkpoint)
    info = {}
    hf_cfg = pre_cfg = None
    if scheme == "hf":
        hf_cfg, _ = read_json_near(args.checkpoint, "config.json")
        pre_cfg, _ = read_json_near(args.checkpoint, "preprocessor_config.json")
    m = SCHEMES[scheme](src, info)
    left = src.unused(IGNORABLE)
    if left:
        msg = "%d unsupported tensor(s) in %s, e.g. %s" % (len(left), args.checkpoint, ", ".join(left[:4]))
        if not args.allow_unused:
            raise ConvertError(msg + " (--allow-unused ignores them)")
        print("warning: " + msg + "; ignored", file=sys.stderr)

    pw = m["patch"][0]
    D, C, P = pw.shape[0], pw.shape[1], pw.shape[2]
    depth = len(m["blocks"])
    if depth == 0:
        raise ConvertError("no transformer blocks found in %s" % args.checkpoint)
    n_prefix = 2 if m["distilled"] else 1
    T = m["pos"].shape[0]
    grid = math.isqrt(max(T - n_prefix, 0))
    if grid * grid != T - n_prefix or grid == 0:
        raise ConvertError("position embedding has %d rows; expected %d prefix token(s) + grid^2 patches" %
                           (T, n_prefix))
    image_size = grid * P
    if hf_cfg and "image_size" in hf_cfg and int(hf_cfg["image_size"]) != image_size:
        raise ConvertError("config.json image_size %s does not match the position embedding (%d)" %
                           (hf_cfg["image_size"], image_size))
    if args.image_size is not None and args.image_size != image_size:
        raise ConvertError("--image-size %d does not match the position embedding (%d patches of %d = %d); "
                           "resizing position embeddings is not supported" % (args.image_size, grid, P, image_size))

    heads = args.heads
    if heads is None and hf_cfg is not None:
        heads = hf_cfg.get("num_attention_heads")
    if heads is None:
        raise ConvertError("the number of attention heads cannot be inferred from the weights; pass --heads N")
    heads = int(heads)
    if heads < 1 or D % heads:
        raise ConvertError("embedding dim %d is not a multiple of %d heads" % (D, heads))
    if hf_cfg is not None:
        act = hf_cfg.get("hidden_act", "gelu")
        if act != "gelu":
            raise ConvertError("config.json hidden_act %r: only 'gelu' (erf) is supported" % act)
        if hf_cfg.get("hidden_size", D) != D or hf_cfg.get("num_hidden_layers", depth) != depth:
            raise ConvertError("config.json hidden_size/num_hidden_layers disagree with the tensors (%d/%d)" %
                               (D, depth))

    pool = args.pool or info["pool_hint"]
    if pool != info["pool_hint"]:
        if info["pool_hint"] == "cls":
            raise ConvertError("--pool mean needs a norm applied after pooling (timm fc_norm); this checkpoint's "
                               "final norm is applied per token before the cls token is read")
        raise ConvertError("--pool cls: this checkpoint has fc_norm (timm global_pool='avg'), i.e. mean pooling")
    if m["distilled"] and pool != "cls":
        raise ConvertError("distilled models pool with the cls/dist tokens")

    eps = args.eps
    if eps is None:
        # timm and torchvision build their LayerNorms with 1e-6; transformers' ViTConfig defaults to 1e-12.
        eps = 1e-12 if scheme == "hf" else 1e-6
        if hf_cfg is not None:
            eps = float(hf_cfg.get("layer_norm_eps", eps))
    scale = args.scale if args.scale is not None else (D // heads) ** -0.5
    K = m["head"][0].shape[0]
    if m["head_dist"] is not None and m["head_dist"][0].shape != m["head"][0].shape:
        raise ConvertError("head_dist.weight has shape %s, expected %s" % (list(m["head_dist"][0].shape),
                                                                            list(m["head"][0].shape)))

    labels = None
    if args.labels:
        labels = read_labels(args.labels)
    elif hf_cfg is not None and isinstance(hf_cfg.get("id2label"), dict):
        id2 = hf_cfg["id2label"]
        try:
            labels = [id2[str(i)] for i in range(len(id2))]
        except KeyError:
            raise ConvertError("config.json id2label is not indexed 0..%d" % (len(id2) - 1))
        if all(re.fullmatch(r"LABEL_\d+", s) for s in labels):
            labels = None  # the transformers default, carries no information
    if labels is not None and len(labels) != K:
        raise ConvertError("%d class labels given for %d classes" % (len(labels), K))

    mean, std = args.mean, args.std
    if mean is None and std is None and pre_cfg is not None and "image_mean" in pre_cfg:
        mean, std = pre_cfg.get("image_mean"), pre_cfg.get("image_std")
        rf = pre_cfg.get("rescale_factor", 1 / 255)
        if pre_cfg.get("do_rescale", True) and abs(rf - 1 / 255) > 1e-9:
            raise ConvertError("preprocessor_config.json rescale_factor %r: Sparrow scales pixels by 1/255" % rf)
    if (mean is None) != (std is None):
        raise ConvertError("give both --mean and --std (or neither)")
    if mean is not None:
        mean, std = [float(x) for x in mean], [float(x) for x in std]
        if len(mean) == 1:
            mean = mean * C
        if len(std) == 1:
            std = std * C
        if len(mean) != C or len(std) != C:
            raise ConvertError("--mean/--std need 1 or %d values" % C)
        if any(not (s > 0 and math.isfinite(s)) for s in std) or any(not math.isfinite(x) for x in mean):
            raise ConvertError("--std values must be positive and --mean finite")

    hp = dict(image_size=image_size, channels=C, patch=P, dim=D, depth=depth, heads=heads, ffn=m["ffn"],
              classes=K, pool=pool, eps=eps, scale=scale, distilled=m["distilled"], mean=mean, std=std,
              labels=labels)
    name = args.name or (hf_cfg or {}).get("_name_or_path") or \
        os.path.splitext(os.path.basename(args.checkpoint))[0]
    ftype = gguf.GGML_F16 if args.type == "f16" else gguf.GGML_F32
    try:
        w = build_gguf(m, hp, ftype, name)
    except gguf.GGUFError as e:
        raise ConvertError(str(e))
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise ConvertError("output directory %s does not exist" % out_dir)
    size = w.write(args.output)
    if not args.quiet:
        print("%s: %s ViT%s, %dx%d x%d, patch %d, D %d, depth %d, heads %d, F %d, %d classes, %s pooling, %s, "
              "%d bytes" % (args.output, scheme, " (distilled)" if m["distilled"] else "", image_size, image_size, C,
                            P, D, depth, heads, m["ffn"], K, pool, args.type.upper(), size))
    return hp


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="vit.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", metavar="CHECKPOINT", help=".pth/.pt/.bin (torch) or .safetensors")
    ap.add_argument("-o", "--output", required=True, metavar="OUT.gguf", help="output GGUF file")
    ap.add_argument("--type", choices=("f32", "f16"), default="f32",
                    help="storage type of the Linear weights and the patch kernel (default f32)")
    ap.add_argument("--heads", type=int, help="attention heads (required unless config.json gives them)")
    ap.add_argument("--image-size", type=int, help="check the image size implied by the position embedding")
    ap.add_argument("--labels", metavar="FILE", help="class names, one per line (num_classes lines)")
    ap.add_argument("--mean", type=float, nargs="+", help="per-channel mean of pixel/255 (1 or C values)")
    ap.add_argument("--std", type=float, nargs="+", help="per-channel std of pixel/255 (1 or C values)")
    ap.add_argument("--pool", choices=("cls", "mean"),
                    help="pooling (default: mean if the checkpoint has timm fc_norm, else cls); must match it")
    ap.add_argument("--scale", type=float, help="attention scale (default head_dim^-0.5)")
    ap.add_argument("--eps", type=float, help="LayerNorm epsilon (default 1e-6, or config.json layer_norm_eps)")
    ap.add_argument("--name", help="general.name (default: config _name_or_path or the checkpoint's file name)")
    ap.add_argument("--allow-unused", action="store_true", help="warn instead of failing on unknown tensors")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="torch.load with full unpickling (can run code from the file; only for trusted files)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except ConvertError as e:
        print("vit.py: error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
