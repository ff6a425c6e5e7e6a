#!/usr/bin/python3
"""Train a small BiFormer-style classifier on Fashion-MNIST on the CPU and export it for Sparrow.

Model: tools/reference/biformer_model.py RefBiFormer on 28x28 grayscale images: stem (3x3 s2
conv -> BN -> GELU -> 3x3 s2 conv -> BN) to a 7x7 map of 32 channels; stage 0: 2 blocks of
bi-level routing attention, 1 head, S = 2 regions per side (the 7x7 map is auto-padded to 8x8,
so regions are 4x4 tokens), topk 2; downsample (3x3 s2 conv -> BN) to 4x4x64; stage 1: 2 blocks
of global attention with LePE (BiFormer's last stage; 2 heads of 32 here instead of 8); every
block has the 3x3 depthwise positional conv and LCE / LePE 5x5; MLP ratio 2; BN -> mean -> head
(115k parameters: sized so that a few epochs fit in ~15 minutes of a shared CPU). Training recipe:
tools/train/fmnist_common.py.

Outputs (in --out-dir, default out/train_biformer, gitignored): state.pt, train.log,
biformer-fmnist-official.pth ({"model": state dict}, official BiFormer tensor names). Then,
unless --no-export: tools/convert/biformer.py writes --gguf (default models/biformer-fmnist.gguf,
BatchNorms folded), the reference's predictions from that GGUF on the 10k test images go to
--preds, and a report to --report (models/biformer-fmnist.md).

Example:
  /usr/bin/python3 tools/train/train_biformer.py --epochs 2 --warmup-epochs 0.2 --max-minutes 28
  /usr/bin/python3 tools/train/train_biformer.py --epochs 2 --warmup-epochs 0.2 --max-minutes 28 --resume
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist_common as fc  # noqa: E402
from biformer_model import RefBiFormer, official_state_dict  # noqa: E402


def add_args(ap):
    ap.add_argument("--dims", type=int, nargs="+", default=[32, 64], help="channels per stage (default %(default)s)")
    ap.add_argument("--depths", type=int, nargs="+", default=[2, 2], help="blocks per stage (default %(default)s)")
    ap.add_argument("--heads", type=int, nargs="+", default=[1, 2],
                    help="heads per stage (global stages: 8 in BiFormer) (default %(default)s)")
    ap.add_argument("--n-win", type=int, nargs="+", default=[2, 1], help="regions per side (default %(default)s)")
    ap.add_argument("--topk", type=int, nargs="+", default=[2, -2],
                    help="routed regions per stage; <= 0: global attention (default %(default)s)")
    ap.add_argument("--mlp-ratio", type=float, default=2.0, help="(default %(default)s)")


def build(args):
    glob = [h for h, k in zip(args.heads, args.topk) if k <= 0]
    m = RefBiFormer(image_size=28, channels=1, dims=args.dims, depths=args.depths, heads=args.heads,
                    n_wins=args.n_win, topks=args.topk, mlp_ratios=args.mlp_ratio, classes=10,
                    global_heads=glob[0] if glob else 8)
    m.init_for_training(args.seed)
    return m


def save_checkpoint(m, path):
    torch.save({"model": official_state_dict(m)}, path)


def convert_cmd(args, ckpt, labels, mean, std, out):
    return [sys.executable, os.path.join(fc.ROOT, "tools", "convert", "biformer.py"), ckpt, "-o", out,
            "--image-size", "28", "--heads"] + [str(h) for h in args.heads] + \
        ["--n-win"] + [str(s) for s in args.n_win] + ["--topk"] + [str(k) for k in args.topk] + \
        ["--labels", labels, "--mean", repr(mean), "--std", repr(std), "--name", "biformer-fmnist"]


def describe(m):
    return "\n".join([
        "| image / channels | 28 / 1 (stem: 3x3 s2 convs 1 -> %d -> %d with BN, map 7x7) |" % (m.dims[0] // 2,
                                                                                           m.dims[0]),
        "| stages: dims / depths / heads | %s / %s / %s |" % (m.dims, m.depths, m.attn_heads),
        "| attention per stage | %s |" % ", ".join(
            "BRA, S = %d, topk %d" % (s, k) if k > 0 else "global + LePE" for s, k in zip(m.n_wins, m.topks)),
        "| maps | 7x7 (auto-padded to 8x8 inside BRA: 2x2 regions of 4x4 tokens), then 4x4 |",
        "| MLP hidden | %s |" % m.hidden,
        "| positional conv / LCE | 3x3 depthwise / 5x5 depthwise |",
        "| pooling / LayerNorm eps / GELU | BN then mean over tokens / 1e-6 / erf |",
    ])


SPEC = fc.Spec("biformer", add_args, build, lambda m: m.config(), save_checkpoint, convert_cmd, describe)

if __name__ == "__main__":
    sys.exit(fc.main(SPEC, __doc__))
