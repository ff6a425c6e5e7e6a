#!/usr/bin/python3
"""Generate (or --check) the NAT golden fixtures in tests/fixtures/nat/ from the independent PyTorch forward.

For each configuration below: build tools/reference/nat_model.py RefNAT with random weights from
a fixed seed, save its official-named state dict (.pth) in a temporary directory, convert it with
tools/convert/nat.py (a subprocess) to tests/fixtures/nat/<config>.gguf, run the float64
reference on a fixed random (already normalized) image and write <config>.golden.gguf with
  image {C,S,S}, tok_conv1, tok_conv2, tok_norm {C,W,H} maps,
  blk.N.{ln1, attn_res, ln2, ffn_res} {C,W,H}, blk.N.qkv {3C,W',H'}, blk.N.attn {C,W',H'}
  (W',H': the map padded to kernel*dilation when it is smaller), blk.N.attn_crop {C,W,H} (padded
  blocks only), blk.N.ffn_up {F,W,H} (after GELU), ds.I.conv / ds.I.norm {2C,W/2,H/2},
  norm {C,W,H} (final LayerNorm, per token), pooled {C,1}, logits {K,1}
(N counts blocks over all levels). Names = the C graph's nodes (models/nat/nat.c). The configs
cover: dilation on a map it does not divide (7 wide, d 2), kernel * dilation == map (global
sparse), windows shifted at the borders (K 7 on 9), kernel == map (K 5 on 5), the v0.14 zero padding (4x4 map, K 3 d 2),
layer scale, rpb, no rpb with an even kernel, no qkv bias, F16 weights, 1 and 3 channels.
docs/sparse-vision.md documents them. `--check` verifies the committed files.
"""

import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vision_fixtures as vf  # noqa: E402
from nat_model import RefNAT, official_state_dict  # noqa: E402

CONVERTER = os.path.join(vf.ROOT, "tools", "convert", "nat.py")
DEFAULT_OUT = os.path.join(vf.ROOT, "tests", "fixtures", "nat")

CONFIGS = {
    # 28x28 RGB -> 7x7: K3 d2 (7 % 2 != 0) then K5; ConvDownsampler -> 4x4: K3, then K3 d2 > 4 (padded
    # to 6x6); layer scale; mean/std/labels through the flags.
    "nat_dil_pad_ls": dict(model=dict(image_size=28, channels=3, dim=8, depths=[2, 2], heads=[1, 2],
                                      kernels=[[3, 5], [3, 3]], dilations=[[2, 1], [1, 2]], mlp_ratio=2.0,
                                      layer_scale=1e-5, classes=10),
                           seed=201, args=["--dilations", "2", "1", "1", "2", "--mean", "0.5", "0.4", "0.3",
                                           "--std", "0.2", "0.25", "0.3"], labels=True),
    # 36x36 gray -> 9x9: K7 (shifted windows), K3 d3 (== map: global sparse); 5x5: K5 (== map);
    # F16 weights (values pre-rounded, so the conversion is exact); mlp ratio 3.
    "dinat_f16": dict(model=dict(image_size=36, channels=1, dim=8, depths=[2, 1], heads=[2, 2],
                                 kernels=[[7, 3], [5]], dilations=[[1, 3], [1]], mlp_ratio=3.0, classes=7),
                      seed=202, args=["--dilations", "1", "3", "1", "--type", "f16"], f16=True),
    # no rpb (heads and kernels from the flags), even kernel 4 and kernel 2, no qkv bias, one level.
    "na_norpb_even": dict(model=dict(image_size=28, channels=1, dim=8, depths=[2], heads=[2], kernels=[[4, 2]],
                                     dilations=[[1, 3]], mlp_ratio=2.0, classes=5, qkv_bias=False, rpb=False),
                          seed=203, args=["--heads", "2", "--kernel-sizes", "4", "2", "--dilations", "1", "3"]),
}


def order(cfg):
    names = ["tok_conv1", "tok_conv2", "tok_norm"]
    n = 0
    for i, d in enumerate(cfg["depths"]):
        for _ in range(d):
            names += ["blk.%d.%s" % (n, s) for s in ("ln1", "qkv", "attn", "attn_crop", "attn_res", "ln2",
                                                      "ffn_up", "ffn_res")]
            n += 1
        if i < len(cfg["depths"]) - 1:
            names += ["ds.%d.conv" % i, "ds.%d.norm" % i]
    return names + ["norm", "pooled", "logits"]


def generate(name, out_dir):
    cfg = CONFIGS[name]
    mc = cfg["model"]
    m = RefNAT(**mc)
    m.init_random(cfg["seed"])
    if cfg.get("f16"):
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(p.half().float())
    image = vf.make_image(mc["channels"], mc["image_size"], cfg["seed"])
    model_path = os.path.join(out_dir, name + ".gguf")
    import tempfile
    with tempfile.TemporaryDirectory(prefix="nat_ref_") as tmp:
        ckpt = os.path.join(tmp, "model.pth")
        torch.save(official_state_dict(m), ckpt)
        cmd = [CONVERTER, ckpt, "-o", model_path, "-q", "--image-size", str(mc["image_size"]), "--name", name]
        if cfg.get("labels"):
            lp = os.path.join(tmp, "labels.txt")
            with open(lp, "w") as f:
                f.write("".join("label %d\n" % i for i in range(mc["classes"])))
            cmd += ["--labels", lp]
        vf.run_converter(cmd + cfg["args"])
    golden = os.path.join(out_dir, name + ".golden.gguf")
    vf.write_golden(golden, "nat", name, vf.json.dumps(mc, sort_keys=True), cfg["seed"], "checkpoint", image,
                    vf.trace_arrays(m, image), order(mc))
    return model_path, golden


if __name__ == "__main__":
    sys.exit(vf.main(__doc__, CONFIGS, generate, RefNAT.from_gguf_tensors, DEFAULT_OUT))
