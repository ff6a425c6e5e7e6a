#!/usr/bin/python3
"""Random-weight DeiT-Tiny for benchmarks: Sparrow GGUF, ONNX export and PyTorch timings.

DeiT-Tiny shape: 224x224x3, patch 16 (196 patches + cls = 197 tokens), D 192, depth 12,
3 heads, MLP 768, 1000 classes, cls pooling, LayerNorm eps 1e-6 (5.7M parameters).
Weights are random (seed --seed), made by tools/reference/vit_model.py RefViT, saved in timm
naming and converted with tools/convert/vit.py, i.e. the same pipeline as the fixtures.

Writes into --out-dir (default out/bench, gitignored; the files are ~23 MB each):
  deit_tiny_timm.pth        timm-named state dict
  deit-tiny-f32.gguf        Sparrow model (F32)           (also -f16 with --f16)
  deit-tiny.onnx            torch.onnx.export of the same model, input "image" 1x3x224x224
  input.f32 / logits.f32    a fixed normalized input and the reference logits (raw little-endian
                            f32, for tools/bench/ort_bench.js --check and the C side)
  torch_bench.json          PyTorch timings
PyTorch is timed for two implementations of the same weights: the reference module (plain
tensor ops) and a torch-native stack (Conv2d + nn.TransformerEncoderLayer, which takes
PyTorch's fused inference fast path), each with 1 and 2 threads: median of --runs runs after
--warmup runs, batch 1. Note the machine's load when you read the numbers.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
from vit_model import RefViT  # noqa: E402

CFG = dict(image_size=224, patch=16, channels=3, dim=192, depth=12, heads=3, ffn=768, classes=1000)


class NativeViT(nn.Module):
    """The same network from stock PyTorch modules (for a fair PyTorch timing)."""

    def __init__(self, ref):
        super().__init__()
        d = ref.dim
        self.proj = nn.Conv2d(ref.channels, d, ref.patch, ref.patch)
        self.cls = nn.Parameter(ref.cls.detach().clone().reshape(1, 1, d))
        self.pos = nn.Parameter(ref.pos.detach().clone()[None])
        self.layers = nn.ModuleList()
        for b in ref.blocks:
            layer = nn.TransformerEncoderLayer(d, ref.heads, ref.ffn, dropout=0.0, activation="gelu",
                                               layer_norm_eps=ref.eps, batch_first=True, norm_first=True)
            with torch.no_grad():
                layer.self_attn.in_proj_weight.copy_(b.qkv_w)
                layer.self_attn.in_proj_bias.copy_(b.qkv_b)
                layer.self_attn.out_proj.weight.copy_(b.out_w)
                layer.self_attn.out_proj.bias.copy_(b.out_b)
                layer.linear1.weight.copy_(b.up_w)
                layer.linear1.bias.copy_(b.up_b)
                layer.linear2.weight.copy_(b.down_w)
                layer.linear2.bias.copy_(b.down_b)
                layer.norm1.weight.copy_(b.ln1_w)
                layer.norm1.bias.copy_(b.ln1_b)
                layer.norm2.weight.copy_(b.ln2_w)
                layer.norm2.bias.copy_(b.ln2_b)
            self.layers.append(layer)
        self.norm = nn.LayerNorm(d, eps=ref.eps)
        self.head = nn.Linear(d, ref.classes)
        with torch.no_grad():
            self.proj.weight.copy_(ref.patch_w)
            self.proj.bias.copy_(ref.patch_b)
            self.norm.weight.copy_(ref.norm_w)
            self.norm.bias.copy_(ref.norm_b)
            self.head.weight.copy_(ref.head_w)
            self.head.bias.copy_(ref.head_b)

    def forward(self, img):
        x = self.proj(img).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x[:, 0]))


def time_model(model, x, threads, warmup, runs):
    torch.set_num_threads(threads)
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            ts.append((time.perf_counter() - t0) * 1e3)
    return dict(threads=threads, median_ms=round(statistics.median(ts), 3), min_ms=round(min(ts), 3), runs=runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "out", "bench"), help="(default %(default)s)")
    ap.add_argument("--seed", type=int, default=2024, help="weight seed (default %(default)s)")
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset, 13..17 (default %(default)s)")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per setting (default %(default)s)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs first (default %(default)s)")
    ap.add_argument("--f16", action="store_true", help="also write deit-tiny-f16.gguf")
    ap.add_argument("--no-onnx", action="store_true", help="skip the ONNX export")
    ap.add_argument("--no-time", action="store_true", help="skip the PyTorch timings")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(1)

    ref = RefViT(**CFG)
    ref.init_random(args.seed)
    ref.eval()
    ckpt = os.path.join(args.out_dir, "deit_tiny_timm.pth")
    torch.save(ref.timm_state_dict(), ckpt)
    conv = [sys.executable, os.path.join(ROOT, "tools", "convert", "vit.py"), ckpt, "--heads", "3",
            "--name", "deit-tiny-random", "--mean", "0.485", "0.456", "0.406", "--std", "0.229", "0.224", "0.225"]
    subprocess.run(conv + ["-o", os.path.join(args.out_dir, "deit-tiny-f32.gguf")], check=True)
    if args.f16:
        subprocess.run(conv + ["-o", os.path.join(args.out_dir, "deit-tiny-f16.gguf"), "--type", "f16"], check=True)

    g = torch.Generator().manual_seed(args.seed + 1)
    x = torch.randn(1, 3, 224, 224, generator=g)
    with torch.no_grad():
        logits = ref(x)
    # HWC for Sparrow's graph input, NCHW for ONNX; both are written (the ONNX input is NCHW).
    x.numpy().astype("<f4").tofile(os.path.join(args.out_dir, "input.f32"))
    x[0].permute(1, 2, 0).contiguous().numpy().astype("<f4").tofile(os.path.join(args.out_dir, "input_hwc.f32"))
    logits.numpy().astype("<f4").tofile(os.path.join(args.out_dir, "logits.f32"))
    result = dict(model="DeiT-Tiny (random weights, seed %d)" % args.seed, torch=torch.__version__,
                  params=sum(p.numel() for p in ref.parameters()))

    if not args.no_onnx:
        onnx_path = os.path.join(args.out_dir, "deit-tiny.onnx")
        try:
            torch.onnx.export(ref, (x,), onnx_path, input_names=["image"], output_names=["logits"],
                              opset_version=args.opset, do_constant_folding=True)
            result["onnx"] = dict(path=onnx_path, opset=args.opset, bytes=os.path.getsize(onnx_path))
            print("exported %s (opset %d, %d bytes)" % (onnx_path, args.opset, os.path.getsize(onnx_path)))
        except Exception as e:  # noqa: BLE001 - report whatever the exporter raised
            result["onnx"] = dict(error="%s: %s" % (type(e).__name__, e))
            print("ONNX export failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)

    if not args.no_time:
        native = NativeViT(ref).eval()
        with torch.no_grad():
            diff = float((native(x) - logits).abs().max())
        result["native_max_abs_diff"] = diff
        result["load_avg_before"] = os.getloadavg()
        result["reference_module"] = [time_model(ref, x, t, args.warmup, args.runs) for t in (1, 2)]
        result["torch_native"] = [time_model(native, x, t, args.warmup, args.runs) for t in (1, 2)]
        result["load_avg_after"] = os.getloadavg()
    with open(os.path.join(args.out_dir, "torch_bench.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
