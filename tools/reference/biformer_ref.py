#!/usr/bin/python3
"""Generate (or --check) the BiFormer golden fixtures in tests/fixtures/biformer/ from the independent PyTorch forward.

For each configuration below: build tools/reference/biformer_model.py RefBiFormer with random
weights (and BatchNorm statistics) from a fixed seed, save {"model": official-named state dict}
(.pth) in a temporary directory, convert it with tools/convert/biformer.py (a subprocess; it
folds the BatchNorms) to tests/fixtures/biformer/<config>.gguf, run the float64 reference on a
fixed random (already normalized) image and write <config>.golden.gguf with
  image {C,S,S}; stem.conv1 (conv + BN, before GELU), stem.conv2, ds.I {C,W,H} maps;
  blk.N.pos (x + dwconv3x3(x)), blk.N.ln1, blk.N.attn_res, blk.N.ln2, blk.N.ffn_res {C,W,H},
  blk.N.ffn_up {F,W,H} (after GELU);
  BRA blocks: blk.N.qk {2qk,W',H'}, blk.N.v, blk.N.attn (routed attention, before LCE),
  blk.N.lce {C,W',H'} (W',H': the map padded to multiples of n_win);
  global blocks: blk.N.qkv {3C,W,H}, blk.N.attn, blk.N.lepe {C,W,H};
  pooled {C,1} (mean before the final BN), norm {C,1} (after it), logits {K,1}
(N counts blocks over all stages). Names = the C graph's nodes (models/biformer/biformer.c).
The configs cover: auto-padding (10x10 map with 3 regions per side, 5x5 with 2), no padding,
topk 1 and > 1, qk_dim != dim, several heads, global attention with 4 and 8 heads, F16 weights
(golden.source "gguf": the reference runs the model read back from the GGUF, because folding
the BatchNorms before rounding to F16 changes the weights), 1 and 3 channels.
docs/sparse-vision.md documents them. `--check` verifies the committed files.
"""

import json
import os
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vision_fixtures as vf  # noqa: E402
from biformer_model import RefBiFormer, official_state_dict  # noqa: E402

CONVERTER = os.path.join(vf.ROOT, "tools", "convert", "biformer.py")
DEFAULT_OUT = os.path.join(vf.ROOT, "tests", "fixtures", "biformer")

CONFIGS = {
    # 40x40 RGB -> 10x10, S 3 (padded to 12x12: 3x3 regions of 4x4), topk 1; 5x5, S 2 (padded to 6x6),
    # topk 3 of 4, 2 heads, qk_dim 8 != dim 16; 3x3 global attention with 4 heads; mean/std/labels.
    "bra_pad": dict(model=dict(image_size=40, channels=3, dims=[8, 16, 16], depths=[1, 2, 1], heads=[1, 2, 4],
                               n_wins=[3, 2, 1], topks=[1, 3, -2], mlp_ratios=2, qk_dims=[8, 8, 16], classes=10,
                               global_heads=4),
                    seed=301, args=["--heads", "1", "2", "4", "--n-win", "3", "2", "1", "--topk", "1", "3", "-2",
                                    "--mean", "0.5", "0.4", "0.3", "--std", "0.2", "0.25", "0.3"], labels=True),
    # 32x32 gray -> 8x8, S 4 (2x2 regions, no padding), topk 4 of 16, 2 heads; 4x4, S 2, topk 2;
    # 2x2 global attention with 8 heads (head dim 2), mlp ratio 3; F16 weights.
    "bra_nopad_f16": dict(model=dict(image_size=32, channels=1, dims=[8, 16, 16], depths=[2, 1, 1],
                                     heads=[2, 2, 8], n_wins=[4, 2, 1], topks=[4, 2, -2], mlp_ratios=3, classes=5,
                                     global_heads=8),
                          seed=302, args=["--heads", "2", "2", "8", "--n-win", "4", "2", "1", "--topk", "4", "2",
                                          "-2", "--type", "f16"], source="gguf"),
}


def order(m):
    names = ["stem.conv1", "stem.conv2"]
    n = 0
    for i, d in enumerate(m.depths):
        if i > 0:
            names.append("ds.%d" % i)
        for _ in range(d):
            names += ["blk.%d.%s" % (n, s) for s in ("pos", "ln1", "qk", "v", "qkv", "attn", "lce", "lepe",
                                                      "attn_res", "ln2", "ffn_up", "ffn_res")]
            n += 1
    return names + ["pooled", "norm", "logits"]


def generate(name, out_dir):
    cfg = CONFIGS[name]
    mc = cfg["model"]
    m = RefBiFormer(**mc)
    m.init_random(cfg["seed"])
    m.eval()
    image = vf.make_image(mc["channels"], mc["image_size"], cfg["seed"])
    model_path = os.path.join(out_dir, name + ".gguf")
    with tempfile.TemporaryDirectory(prefix="biformer_ref_") as tmp:
        ckpt = os.path.join(tmp, "model.pth")
        torch.save({"model": official_state_dict(m)}, ckpt)
        cmd = [CONVERTER, ckpt, "-o", model_path, "-q", "--image-size", str(mc["image_size"]), "--name", name]
        if cfg.get("labels"):
            lp = os.path.join(tmp, "labels.txt")
            with open(lp, "w") as f:
                f.write("".join("label %d\n" % i for i in range(mc["classes"])))
            cmd += ["--labels", lp]
        vf.run_converter(cmd + cfg["args"])
    source = cfg.get("source", "checkpoint")
    if source == "gguf":
        g = vf.gguf.GGUFReader(model_path)
        m = RefBiFormer.from_gguf_tensors(g.kv, g.arrays())
    golden = os.path.join(out_dir, name + ".golden.gguf")
    vf.write_golden(golden, "biformer", name, json.dumps(mc, sort_keys=True), cfg["seed"], source, image,
                    vf.trace_arrays(m, image), order(m))
    return model_path, golden


if __name__ == "__main__":
    sys.exit(vf.main(__doc__, CONFIGS, generate, RefBiFormer.from_gguf_tensors, DEFAULT_OUT))
