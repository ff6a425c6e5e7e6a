#!/usr/bin/python3
"""Golden fixtures for quantized ViTs (tests/fixtures/vit_quant/) from an independent PyTorch forward.

The quantized model is the plain reference (tools/reference/vit_model.py RefViT) with two
changes, both written here from the block formats of ggml (../shared/REFERENCE.md section 4.1),
without any of Sparrow's C code:

  weights      every linear layer's weight matrix W [N, K] (qkv, attention output, MLP up and
               down, head, head_dist; the rows along K in blocks of 32) is replaced by
               dequantize(quantize(W)) with ggml's reference quantizer of the type:
                 Q8_0: d = amax/127 (f32), q = roundf(x * (1/d)), stored d = fp16(d), y = q * d
                 Q4_0: m = the signed value of largest |x| (first one wins), d = m / -8,
                       q = min(15, (int)(x * (1/d) + 8.5f)), stored d = fp16(d), y = (q - 8) * d
               computed in float32 exactly as the C reference does (so the bytes must agree);
               the patch embedding (a conv in Sparrow), norms, biases, tokens and positions stay
               F32 (the default rules of `sparrow quantize`);
  activations  the input X [M, K] of each of those layers is quantized per row in blocks of 32
               to Q8_0 the way the runtime's quantized GEMM does it (ops/gemm/qgemm.h: ggml's
               vec_dot_type pairing, for every M, M = 1 included):
                 d = amax/127, q = round half away from zero (x * (1/d)) in [-127, 127],
                 X' = q * fp16(d)       (the scale used by the dot product is the fp16 one)
               and the layer computes X' . W'^T + b in float64.
Everything else is the float64 RefViT forward.

For each configuration below the generator
  1. builds RefViT with random weights, exports a timm checkpoint, converts it with
     tools/convert/vit.py to an F32 GGUF (in a temporary directory);
  2. writes tests/fixtures/vit_quant/<config>.gguf: the same metadata (general.file_type of the
     type, general.quantization_version 2) and tensors, the linear weights quantized here;
     checks those bytes equal the quantization of the RefViT parameters (converter layout);
  3. runs the quantized float64 forward on a fixed random image and writes
     <config>.golden.gguf: image, the graph-node activations (names of models/vit/vit.c, as
     tools/reference/vit_ref.py writes them), golden.type, and the f32 source of a few weight
     matrices (src.<tensor name>) so the C test can check that the C quantizer makes the same
     bytes as this one.
The C test is tests/unit/test_vit_quant_golden.c (tolerance documented there and in
docs/quant-vision.md). Usage: vit_quant_ref.py [--out-dir DIR] [--only NAME...] [--check [--sparrow BIN]]
(--check regenerates into a temporary directory and requires byte-identical files; with
--sparrow BIN it also requires `BIN quantize` of the F32 conversion to give the same tensors).
"""

import argparse
import filecmp
import json
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import vit_ref  # noqa: E402  (checkpoint export, converter call, golden layout)
import vit_model  # noqa: E402
from vit_model import RefViT  # noqa: E402
import gguf  # noqa: E402  (on the path through vit_ref; container format only)

DEFAULT_OUT = os.path.join(ROOT, "tests", "fixtures", "vit_quant")
QK = 32
GGML_TYPE = {"q8_0": gguf.GGML_Q8_0, "q4_0": gguf.GGML_Q4_0}
FILE_TYPE = {"q8_0": 7, "q4_0": 2}  # llama.cpp's LLAMA_FTYPE_MOSTLY_Q8_0 / _Q4_0

CONFIGS = {
    # cls pooling, 2 blocks, K = 64 (2 blocks of 32) and 128 (ffn_down: 4 blocks); 3x3 patches + cls = 10 tokens
    "q8_0_cls": dict(model=dict(image_size=12, patch=4, channels=1, dim=64, depth=2, heads=2, ffn=128, classes=10),
                     scheme="timm", file="pth", seed=301, qtype="q8_0"),
    # Q4_0, distilled (cls + dist tokens, head and head_dist: M = 1 GEMMs), ffn 96 (3 blocks), 3 channels
    "q4_0_distilled": dict(model=dict(image_size=12, patch=4, channels=3, dim=64, depth=1, heads=4, ffn=96, classes=10,
                                      distilled=True),
                           scheme="timm", file="pth-wrapped", seed=302, qtype="q4_0"),
    # Q8_0, mean pooling without qkv bias, one block
    "q8_0_mean": dict(model=dict(image_size=8, patch=4, channels=1, dim=32, depth=1, heads=1, ffn=64, classes=7,
                                 pool="mean", qkv_bias=False),
                      scheme="timm", file="pth", seed=303, qtype="q8_0"),
}

# GGUF tensor name -> RefViT parameter name, for the linear layers (the quantized ones)
def linear_params(m):
    out = {}
    for l in range(m.depth):
        for g, r in (("attn_qkv", "qkv_w"), ("attn_out", "out_w"), ("ffn_up", "up_w"), ("ffn_down", "down_w")):
            out["blk.%d.%s.weight" % (l, g)] = "blocks.%d.%s" % (l, r)
    out["head.weight"] = "head_w"
    if m.distilled:
        out["head_dist.weight"] = "head_dist_w"
    return out


# ---- block quantizers (float32 arithmetic of ggml's reference) ------------------------------

def _roundf(x):
    """C roundf (half away from zero) of float32 values, exactly (float64 holds |x| + 0.5)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_q8_0(w):
    """w: float32 [..., K], K % 32 == 0 -> (raw bytes, dequantized float32 of w's shape)."""
    b = np.ascontiguousarray(w, dtype=np.float32).reshape(-1, QK)
    amax = np.abs(b).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = _roundf((b * inv[:, None]).astype(np.float32)).astype(np.int8)
    d16 = d.astype(np.float16)
    raw = np.empty((b.shape[0], 34), dtype=np.uint8)
    raw[:, :2] = d16.astype("<f2").view(np.uint8).reshape(-1, 2)
    raw[:, 2:] = q.view(np.uint8)
    deq = (q.astype(np.float32) * d16.astype(np.float32)[:, None]).astype(np.float32)
    return raw.tobytes(), deq.reshape(w.shape)


def quantize_q4_0(w):
    b = np.ascontiguousarray(w, dtype=np.float32).reshape(-1, QK)
    idx = np.argmax(np.abs(b), axis=1)  # first of the largest |x|
    mx = b[np.arange(b.shape[0]), idx]
    d = (mx / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    t = (b * inv[:, None]).astype(np.float32)
    u = (t + np.float32(8.5)).astype(np.float32)
    q = np.minimum(15, np.trunc(u.astype(np.float64))).astype(np.int32)
    if (q < 0).any():
        raise ValueError("degenerate Q4_0 block")
    d16 = d.astype(np.float16)
    raw = np.empty((b.shape[0], 18), dtype=np.uint8)
    raw[:, :2] = d16.astype("<f2").view(np.uint8).reshape(-1, 2)
    raw[:, 2:] = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    deq = ((q - 8).astype(np.float32) * d16.astype(np.float32)[:, None]).astype(np.float32)
    return raw.tobytes(), deq.reshape(w.shape)


QUANTIZE = {"q8_0": quantize_q8_0, "q4_0": quantize_q4_0}


# Margins of the last forward (see make_image): for every quantized activation, its distance
# from a rounding boundary of x/d in steps; for every block, the distance of amax/127 from an
# fp16 rounding boundary in fp16 ulps.
MARGINS = {"code": [], "scale": []}


def fp16_margin(d):
    """Distance of float64 values d > 0 from the nearest fp16 rounding midpoint, in fp16 ulps."""
    d = np.asarray(d, dtype=np.float64)
    out = np.full(d.shape, np.inf)
    nz = d > 0
    e = np.floor(np.log2(d[nz]))
    ulp = np.exp2(np.maximum(e, -14) - 10)  # normal: 2^(e-10); subnormal: 2^-24
    frac = d[nz] / ulp - np.floor(d[nz] / ulp)
    out[nz] = np.abs(frac - 0.5)
    return out


def quantize_activations(x):
    """Per row, blocks of 32 along the last dim, to Q8_0 and back, in float64 (see the docstring)."""
    shape = x.shape
    b = x.reshape(-1, QK)
    amax = b.abs().max(dim=1).values
    d = amax / 127.0
    inv = torch.where(d != 0, 1.0 / d, torch.zeros_like(d))
    y = b * inv[:, None]
    q = (torch.sign(y) * torch.floor(y.abs() + 0.5)).clamp(-127, 127)
    d16 = torch.from_numpy(d.numpy().astype(np.float32).astype(np.float16).astype(np.float64))
    a = y.abs().numpy()
    MARGINS["code"].append(np.abs(a - np.floor(a) - 0.5).min())
    MARGINS["scale"].append(fp16_margin(d.numpy()).min())
    return (q * d16[:, None]).reshape(shape)


# ---- the quantized reference forward -------------------------------------------------------------

def quantized_model(m, qtype):
    """float64 copy of m with every linear weight replaced by its dequantized qtype value.
    Returns (model, {gguf name: raw bytes of the quantized parameter}, set of ids of those params)."""
    md = RefViT(**m.config()).double()
    md.load_state_dict(m.state_dict())
    params = dict(md.named_parameters())
    raws, ids = {}, set()
    with torch.no_grad():
        for gname, pname in linear_params(md).items():
            p = params[pname]
            raw, deq = QUANTIZE[qtype](p.detach().numpy().astype(np.float32))
            p.copy_(torch.from_numpy(deq.astype(np.float64)))
            raws[gname] = raw
            ids.add(id(p))
    return md, raws, ids


def quantized_trace(m, qtype, image):
    md, raws, ids = quantized_model(m, qtype)
    plain = vit_model.linear

    def qlinear(x, w, b):  # the quantized layers are recognized by their weight parameter
        return plain(quantize_activations(x) if id(w) in ids else x, w, b)

    trace = {}
    vit_model.linear = qlinear
    try:
        with torch.no_grad():
            md(image.double(), trace)
    finally:
        vit_model.linear = plain
    out = {}
    for k, v in trace.items():
        a = v[0].numpy().astype(np.float32)
        out[k] = a.reshape(1, -1) if a.ndim == 1 else a
    return out, raws


# ---- files ---------------------------------------------------------------------------------------

def quantize_gguf(f32_path, out_path, qtype, expected_raws):
    """Copies f32_path to out_path with the linear weights quantized here (the default rule of
    `sparrow quantize` for a ViT); returns the names of the quantized tensors."""
    r = gguf.GGUFReader(f32_path)
    w = gguf.GGUFWriter(r.alignment)
    for key, val in r.kv.items():
        if key in ("general.file_type", "general.quantization_version"):
            continue
        vt = r.kv_type[key]
        if isinstance(vt, tuple):
            w.add_array(key, val, vt[1])
        else:
            w.add_kv(key, vt, val)
    w.add_u32("general.file_type", FILE_TYPE[qtype])
    w.add_u32("general.quantization_version", 2)
    done = []
    for name, t in r.tensors.items():
        if name in expected_raws:
            if t.type != gguf.GGML_F32 or len(t.ne) != 2:
                raise RuntimeError("%s: expected a 2-D F32 tensor" % name)
            raw, _ = QUANTIZE[qtype](r.array(name))
            if raw != expected_raws[name]:
                raise RuntimeError("%s: the converter's layout differs from the RefViT parameter's" % name)
            w.tensors[name] = (GGML_TYPE[qtype], tuple(t.ne), raw)  # raw block data (the writer packs F32/F16)
            done.append(name)
        else:
            w.add_tensor(name, r.array(name), t.type, ne=t.ne)
    if sorted(done) != sorted(expected_raws):
        raise RuntimeError("quantized %s, expected %s" % (sorted(done), sorted(expected_raws)))
    w.write(out_path)
    return done, r


SRC_SAMPLES = ("head.weight", "blk.0.attn_out.weight")


# Sparrow's f32 activations differ from the float64 reference's by about 1e-6 at most (the
# quantized fixtures measure <= 1e-6 on every node), i.e. <= ~1.3e-4 quantization steps and
# ~1e-3 fp16 ulps of a block scale. Where an activation lies closer than that to a rounding
# boundary the two sides can pick different codes (one step apart) and differ by far more than
# f32 rounding. The image is therefore redrawn until every code is at least CODE_MARGIN steps
# and every scale at least SCALE_MARGIN ulps away from a boundary: then the integer codes and
# the scales are the same on both sides and the C test can use f32-rounding tolerances.
CODE_MARGIN, SCALE_MARGIN, MAX_DRAWS = 3e-4, 3e-3, 5000


def make_image(cfg, draw):
    mc = cfg["model"]
    g = torch.Generator().manual_seed(cfg["seed"] * 10007 + draw)
    return torch.randn(1, mc.get("channels", 1), mc["image_size"], mc["image_size"], generator=g)


def pick_image(m, cfg):
    for draw in range(MAX_DRAWS):
        image = make_image(cfg, draw)
        MARGINS["code"].clear(), MARGINS["scale"].clear()
        trace, raws = quantized_trace(m, cfg["qtype"], image)
        cm, sm = min(MARGINS["code"]), min(MARGINS["scale"])
        if cm >= CODE_MARGIN and sm >= SCALE_MARGIN:
            return draw, image, trace, raws, cm, sm
    raise RuntimeError("no image with margins >= %g steps / %g ulps in %d draws" % (CODE_MARGIN, SCALE_MARGIN,
                                                                                    MAX_DRAWS))


def generate(name, out_dir, verbose=False):
    cfg = CONFIGS[name]
    qtype = cfg["qtype"]
    m = vit_ref.build_model(cfg)
    draw, image, trace, raws, cm, sm = pick_image(m, cfg)
    if verbose:
        print("%-20s image draw %d: code margin %.2e steps, scale margin %.2e ulps" % (name, draw, cm, sm))
    model_path = os.path.join(out_dir, name + ".gguf")
    with tempfile.TemporaryDirectory(prefix="vit_qref_") as tmp:
        ckpt = vit_ref.write_checkpoint(cfg, m, tmp)
        f32_path = os.path.join(tmp, name + ".gguf")
        vit_ref.convert(cfg, m, ckpt, f32_path, tmp)
        _, r = quantize_gguf(f32_path, model_path, qtype, raws)
        gw = vit_ref.golden_writer(name, cfg, image, trace)
        gw.add_string("golden.type", qtype)
        gw.add_u32("golden.image_draw", draw)
        gw.add_f32("golden.code_margin", float(cm))
        gw.add_f32("golden.scale_margin", float(sm))
        for s in SRC_SAMPLES:
            gw.add_tensor("src." + s, r.array(s))
    golden_path = os.path.join(out_dir, name + ".golden.gguf")
    gw.write(golden_path)
    return model_path, golden_path


def cross_check(name, fixture_dir, sparrow):
    """`sparrow quantize` on the F32 conversion gives the fixture's tensors (types and bytes)."""
    import subprocess
    cfg = CONFIGS[name]
    m = vit_ref.build_model(cfg)
    errs = []
    with tempfile.TemporaryDirectory(prefix="vit_qx_") as tmp:
        ckpt = vit_ref.write_checkpoint(cfg, m, tmp)
        f32_path, out = os.path.join(tmp, "f32.gguf"), os.path.join(tmp, "q.gguf")
        vit_ref.convert(cfg, m, ckpt, f32_path, tmp)
        subprocess.run([sparrow, "quantize", f32_path, out, cfg["qtype"]], check=True, capture_output=True)
        a, b = gguf.GGUFReader(out), gguf.GGUFReader(os.path.join(fixture_dir, name + ".gguf"))
        if list(a.tensors) != list(b.tensors):
            errs.append("%s: tensor lists differ" % name)
        for t in a.tensors:
            ta, tb = a.tensors[t], b.tensors.get(t)
            if tb is None or ta.type != tb.type or ta.ne != tb.ne or bytes(ta.data) != bytes(tb.data):
                errs.append("%s: %s differs between sparrow quantize and the reference" % (name, t))
    return errs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=DEFAULT_OUT, help="where to write the fixtures (default %(default)s)")
    ap.add_argument("--only", nargs="+", choices=sorted(CONFIGS), help="generate only these configs")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temporary directory and compare with --out-dir byte for byte")
    ap.add_argument("--sparrow", metavar="BIN",
                    help="with --check: also require `BIN quantize` of the F32 model to give the fixture's tensors")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = args.only or list(CONFIGS)
    if args.check:
        bad = 0
        with tempfile.TemporaryDirectory(prefix="vit_qfx_") as tmp:
            for name in names:
                for p in generate(name, tmp):
                    ref = os.path.join(args.out_dir, os.path.basename(p))
                    same = os.path.exists(ref) and filecmp.cmp(p, ref, shallow=False)
                    print("%-44s %s" % (os.path.basename(p), "same" if same else "DIFFERS"))
                    bad += not same
                if args.sparrow:
                    errs = cross_check(name, args.out_dir, args.sparrow)
                    for e in errs:
                        print(e)
                    print("%-44s %s" % (name + ": sparrow quantize", "same tensors" if not errs else "DIFFERS"))
                    bad += len(errs)
        return 1 if bad else 0
    os.makedirs(args.out_dir, exist_ok=True)
    total = 0
    for name in names:
        paths = generate(name, args.out_dir, verbose=True)
        sizes = [os.path.getsize(p) for p in paths]
        total += sum(sizes)
        print("%-20s model %6d B  golden %6d B" % (name, sizes[0], sizes[1]))
    print("total %d B" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
