#!/usr/bin/python3
"""Generate the ViT golden fixtures in tests/fixtures/vit/ from an independent PyTorch forward.

For each configuration below:
  1. build tools/reference/vit_model.py RefViT with random weights from a fixed seed;
  2. save its weights in an external naming scheme (timm / torchvision / Hugging Face) to a
     temporary directory, in the file format the config names (.pth or .safetensors);
  3. run tools/convert/vit.py on it (a subprocess) -> tests/fixtures/vit/<config>.gguf;
  4. run the reference forward in float64 on a fixed random image (already normalized) and
     write tests/fixtures/vit/<config>.golden.gguf with the f32 tensors
        image {C,S,S} (HWC), embed {D,T}, blk.L.{ln1,attn_res,ln2,ffn_res} {D,T},
        blk.L.qkv {3D,T}, blk.L.attn {D,T}, blk.L.ffn_up {F,T} (after GELU), logits {K,1},
        plus norm {D,prefix} (cls pooling) or pooled/fc_norm {D,1} (mean pooling),
     and the metadata golden.model (the model file name), golden.config (JSON), golden.seed.
The names are those of Sparrow's ViT graph nodes (models/vit/vit.c). The configs are
documented in docs/vit.md. tools/reference/check_vit_fixtures.py verifies the result.
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "convert"))
from vit_model import RefViT  # noqa: E402
import gguf  # noqa: E402  (container format only; no ViT shape logic)

CONVERTER = os.path.join(ROOT, "tools", "convert", "vit.py")
DEFAULT_OUT = os.path.join(ROOT, "tests", "fixtures", "vit")

BASE = dict(image_size=16, patch=4, channels=1, dim=32, depth=2, heads=2, ffn=64, classes=10)
CONFIGS = {
    # timm naming, .pth holding a bare state dict; 3 channels, head_dim 16; mean/std/labels via flags.
    "timm_c3": dict(model=dict(BASE, channels=3), scheme="timm", file="pth", seed=101,
                    labels=["class%d" % i for i in range(10)], mean=[0.485, 0.456, 0.406],
                    std=[0.229, 0.224, 0.225]),
    # timm qkv_bias=False, 4 heads (head_dim 8), 12x12 image, converted with --type f16 from an F16
    # safetensors (all weights are f16 values, so the conversion is exact; norms/biases stay F32).
    "timm_noqkvbias_f16": dict(model=dict(BASE, image_size=12, heads=4, qkv_bias=False), scheme="timm", file="safetensors-f16",
                               seed=102, type="f16"),
    # torchvision naming (mlp.0 / mlp.3), odd sizes: 15x15 image, patch 5 (3x3 grid), D 24 with
    # 4 heads (head_dim 6), 1 block.
    "torchvision": dict(model=dict(BASE, image_size=15, patch=5, channels=3, dim=24, depth=1, heads=4), scheme="torchvision",
                        file="pth", seed=103),
    # Hugging Face ViTForImageClassification: model.safetensors + config.json (eps 1e-12, id2label)
    # + preprocessor_config.json (mean/std 0.5); 12x12 image, 1 block, F = 48.
    "hf": dict(model=dict(BASE, image_size=12, channels=3, depth=1, ffn=48, eps=1e-12), scheme="hf", file="safetensors",
               seed=104, labels=["cat", "dog", "bird", "fish", "frog", "horse", "ship", "truck", "car", "plane"]),
    # distilled DeiT (timm), 12x12 image, 1 block: cls + dist tokens, head + head_dist averaged; .pth wrapped as {"model": sd}.
    "deit_distilled": dict(model=dict(BASE, image_size=12, depth=1, distilled=True), scheme="timm", file="pth-wrapped", seed=105),
    # timm global_pool='avg' (fc_norm, mean over patch tokens), 12x12 image, F 32, 7 classes, attention scale 0.3 (--scale).
    "timm_mean": dict(model=dict(BASE, image_size=12, depth=1, ffn=32, pool="mean", classes=7, scale=0.3), scheme="timm", file="pth",
                      seed=106, extra_args=["--scale", "0.3"]),
}


def build_model(cfg):
    m = RefViT(**cfg["model"])
    m.init_random(cfg["seed"])
    if cfg["file"].endswith("f16"):  # the checkpoint stores every tensor as F16: use f16 values throughout
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(p.half().float())
    return m


def make_image(cfg):
    mc = cfg["model"]
    g = torch.Generator().manual_seed(cfg["seed"] + 1000)
    return torch.randn(1, mc.get("channels", 1), mc["image_size"], mc["image_size"], generator=g)


def save_safetensors(path, sd, dtype="F32"):
    header, blobs, off = {}, [], 0
    for k, v in sd.items():
        a = v.detach().cpu().numpy().astype("<f2" if dtype == "F16" else "<f4")
        raw = a.tobytes()
        header[k] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_checkpoint(cfg, m, tmp):
    scheme, kind = cfg["scheme"], cfg["file"]
    sd = {"timm": m.timm_state_dict, "torchvision": m.torchvision_state_dict, "hf": m.hf_state_dict}[scheme]()
    if scheme == "hf":
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(m.hf_config(cfg.get("labels")), f, indent=1)
        with open(os.path.join(tmp, "preprocessor_config.json"), "w") as f:
            json.dump({"image_mean": [0.5] * m.channels, "image_std": [0.5] * m.channels, "do_rescale": True,
                       "rescale_factor": 1 / 255, "do_normalize": True}, f, indent=1)
    if kind.startswith("safetensors"):
        path = os.path.join(tmp, "model.safetensors")
        save_safetensors(path, sd, "F16" if kind.endswith("f16") else "F32")
    else:
        path = os.path.join(tmp, "model.pth")
        torch.save({"model": sd} if kind == "pth-wrapped" else sd, path)
    return path


def convert(cfg, m, ckpt, out_path, tmp):
    cmd = [sys.executable, CONVERTER, ckpt, "-o", out_path, "-q", "--type", cfg.get("type", "f32"),
           "--name", os.path.splitext(os.path.basename(out_path))[0]]
    if cfg["scheme"] != "hf":
        cmd += ["--heads", str(m.heads)]
    if cfg.get("labels") and cfg["scheme"] != "hf":
        lp = os.path.join(tmp, "labels.txt")
        with open(lp, "w") as f:
            f.write("\n".join(cfg["labels"]) + "\n")
        cmd += ["--labels", lp]
    if cfg.get("mean"):
        cmd += ["--mean"] + [repr(x) for x in cfg["mean"]] + ["--std"] + [repr(x) for x in cfg["std"]]
    cmd += cfg.get("extra_args", [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("converter failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr))


def reference_trace(m, image):
    """float64 forward; returns name -> numpy f32 array in numpy shape (ggml ne reversed)."""
    md = RefViT(**m.config()).double()
    md.load_state_dict(m.state_dict())
    trace = {}
    with torch.no_grad():
        md(image.double(), trace)
    out = {}
    for k, v in trace.items():
        a = v[0].numpy().astype(np.float32)  # drop the batch dim
        out[k] = a.reshape(1, -1) if a.ndim == 1 else a  # {D} -> {D,1}, {K} -> {K,1}
    return out


def golden_writer(name, cfg, image, trace):
    w = gguf.GGUFWriter()
    w.add_string("general.architecture", "vit-golden")
    w.add_string("golden.model", name + ".gguf")
    w.add_string("golden.config", json.dumps(cfg["model"], sort_keys=True))
    w.add_u32("golden.seed", cfg["seed"])
    w.add_tensor("image", image[0].permute(1, 2, 0).contiguous().numpy())  # HWC -> ne {C,S,S}
    order = ["embed"]
    for l in range(cfg["model"].get("depth", BASE["depth"])):
        order += ["blk.%d.%s" % (l, n) for n in ("ln1", "qkv", "attn", "attn_res", "ln2", "ffn_up", "ffn_res")]
    order += [k for k in ("norm", "pooled", "fc_norm") if k in trace] + ["logits"]
    missing = set(trace) ^ set(order)
    if missing:
        raise RuntimeError("trace / golden name mismatch: %s" % sorted(missing))
    for k in order:
        w.add_tensor(k, trace[k])
    return w


def generate(name, out_dir):
    cfg = CONFIGS[name]
    m = build_model(cfg)
    image = make_image(cfg)
    model_path = os.path.join(out_dir, name + ".gguf")
    with tempfile.TemporaryDirectory(prefix="vit_ref_") as tmp:
        ckpt = write_checkpoint(cfg, m, tmp)
        convert(cfg, m, ckpt, model_path, tmp)
    golden = golden_writer(name, cfg, image, reference_trace(m, image))
    golden_path = os.path.join(out_dir, name + ".golden.gguf")
    golden.write(golden_path)
    return model_path, golden_path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=DEFAULT_OUT, help="where to write the fixtures (default %(default)s)")
    ap.add_argument("--only", nargs="+", choices=sorted(CONFIGS), help="generate only these configs")
    ap.add_argument("--list", action="store_true", help="print the configs and exit")
    args = ap.parse_args()
    if args.list:
        for k, v in CONFIGS.items():
            print("%-20s %s" % (k, json.dumps(v, sort_keys=True)))
        return 0
    torch.set_num_threads(1)
    os.makedirs(args.out_dir, exist_ok=True)
    total = 0
    for name in args.only or CONFIGS:
        paths = generate(name, args.out_dir)
        sizes = [os.path.getsize(p) for p in paths]
        total += sum(sizes)
        print("%-20s model %6d B  golden %6d B" % (name, sizes[0], sizes[1]))
    print("total %d B" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
