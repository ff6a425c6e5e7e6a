#!/usr/bin/python3
"""Train a small NAT / DiNAT-style classifier on Fashion-MNIST on the CPU and export it for Sparrow.

Model: tools/reference/nat_model.py RefNAT on 28x28 grayscale images: ConvTokenizer (two 3x3
stride-2 convs) to a 7x7 map of 32 channels; level 0: 2 NAT layers, 1 head of 32, kernels 5/3
with dilations 1/2 (the dilated layer sees every other token of a 7-wide map, which 2 does not
divide); ConvDownsampler to 4x4x64; level 1: 2 layers, 2 heads, kernel 3; MLP ratio 2; rpb in
every layer; LayerNorm -> mean -> head (108k parameters: sized so that a few epochs fit in
~15 minutes of a shared CPU). Training recipe and stages: tools/train/fmnist_common.py.

Outputs (in --out-dir, default out/train_nat, gitignored): state.pt (resume state, after
every epoch), train.log, nat-fmnist-official.pth (bare state dict, official NAT tensor names).
Then, unless --no-export: tools/convert/nat.py writes --gguf (default models/nat-fmnist.gguf),
the reference's predictions from that GGUF on the 10k test images go to --preds, and a report
to --report (models/nat-fmnist.md).

Example:
  /usr/bin/python3 tools/train/train_nat.py --epochs 3 --warmup-epochs 0.3 --max-minutes 28
  /usr/bin/python3 tools/train/train_nat.py --epochs 3 --warmup-epochs 0.3 --max-minutes 28 --resume   # until done
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist_common as fc  # noqa: E402
from nat_model import RefNAT, official_state_dict  # noqa: E402


def add_args(ap):
    ap.add_argument("--dim", type=int, default=32, help="level-0 channels (default %(default)s)")
    ap.add_argument("--depths", type=int, nargs="+", default=[2, 2], help="blocks per level (default %(default)s)")
    ap.add_argument("--heads", type=int, nargs="+", default=[1, 2], help="heads per level (default %(default)s)")
    ap.add_argument("--kernels", type=int, nargs="+", default=[5, 3, 3, 3],
                    help="kernel size per block, all levels in order (default %(default)s)")
    ap.add_argument("--dilations", type=int, nargs="+", default=[1, 2, 1, 1],
                    help="dilation per block, all levels in order (default %(default)s)")
    ap.add_argument("--mlp-ratio", type=float, default=2.0, help="(default %(default)s)")


def split(flat, depths):
    if len(flat) != sum(depths):
        sys.exit("error: %d per-block values for %d blocks" % (len(flat), sum(depths)))
    out, off = [], 0
    for d in depths:
        out.append(flat[off:off + d])
        off += d
    return out


def build(args):
    m = RefNAT(image_size=28, channels=1, dim=args.dim, depths=args.depths, heads=args.heads,
               kernels=split(args.kernels, args.depths), dilations=split(args.dilations, args.depths),
               mlp_ratio=args.mlp_ratio, classes=10)
    m.init_for_training(args.seed)
    return m


def save_checkpoint(m, path):
    torch.save(official_state_dict(m), path)


def convert_cmd(args, ckpt, labels, mean, std, out):
    return [sys.executable, os.path.join(fc.ROOT, "tools", "convert", "nat.py"), ckpt, "-o", out, "--image-size", "28",
            "--dilations"] + [str(d) for d in args.dilations] + \
        ["--labels", labels, "--mean", repr(mean), "--std", repr(std), "--name", "nat-fmnist"]


def describe(m):
    return "\n".join([
        "| image / channels | 28 / 1 (tokenizer: 3x3 s2 convs 1 -> %d -> %d, map 7x7) |" % (m.dim // 2, m.dim),
        "| levels: dims / depths / heads | %s / %s / %s (head dim 32) |" % (m.dims, m.depths, m.heads),
        "| kernel sizes / dilations per block | %s / %s |" % (m.kernels, m.dilations),
        "| maps | 7x7, then 4x4 after the ConvDownsampler |",
        "| MLP hidden | %s (ratio %g) |" % (m.hidden, m.mlp_ratio),
        "| rpb / layer scale / qkv bias | yes / no / yes |",
        "| pooling / LayerNorm eps / GELU | LayerNorm then mean over tokens / 1e-5 / erf |",
    ])


SPEC = fc.Spec("nat", add_args, build, lambda m: m.config(), save_checkpoint, convert_cmd, describe)

if __name__ == "__main__":
    sys.exit(fc.main(SPEC, __doc__))
