#!/usr/bin/python3
"""Classify IDX images with a Sparrow ViT GGUF using the independent PyTorch reference.

The GGUF is read with tools/convert/gguf.py (F32, F16, BF16, Q8_0 and Q4_0 tensors are
dequantized), the weights are loaded into tools/reference/vit_model.py RefViT with the
layouts of models/vit/vit.h undone, and the images (IDX ubyte, gzip or raw, [N, S, S],
one channel) are preprocessed like Sparrow does: pixel/255, then (x - vit.image_mean) /
vit.image_std. Writes one predicted class id per line (--out) and, when --idx-labels is
given, prints "top-1: 89.12%".

Example:
  /usr/bin/python3 tools/reference/vit_predict.py models/vit-fmnist.gguf \\
      --idx-images /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz \\
      --idx-labels /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz --out preds.txt
"""

import argparse
import gzip
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "convert"))
from vit_model import RefViT  # noqa: E402
import gguf  # noqa: E402


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    nd = raw[3]
    dims = struct.unpack(">%dI" % nd, raw[4:4 + 4 * nd])
    if len(raw) != 4 + 4 * nd + int(np.prod(dims)):
        raise ValueError("%s: size does not match its dims %s" % (path, list(dims)))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_model(path):
    g = gguf.GGUFReader(path)
    if g.kv.get("general.architecture") != "vit":
        raise ValueError("%s: general.architecture is %r, not 'vit'" % (path, g.kv.get("general.architecture")))
    m = RefViT.from_gguf_tensors(g.kv, g.arrays())
    c = m.channels
    mean = np.array(g.kv.get("vit.image_mean", [0.0] * c), dtype=np.float64)
    std = np.array(g.kv.get("vit.image_std", [1.0] * c), dtype=np.float64)
    return m, mean, std, g.kv.get("vit.class_labels")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", metavar="MODEL.gguf")
    ap.add_argument("--idx-images", required=True, metavar="F", help="IDX ubyte images [N,S,S] (gzip or raw)")
    ap.add_argument("--idx-labels", metavar="F", help="IDX ubyte labels [N]; enables the top-1 line")
    ap.add_argument("--out", metavar="FILE", help="write one predicted class id per line")
    ap.add_argument("--limit", type=int, help="only the first N images")
    ap.add_argument("--batch", type=int, default=250, help="images per forward (default %(default)s)")
    ap.add_argument("--precision", choices=("f32", "f64"), default="f32",
                    help="arithmetic of the reference forward (default %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(args.threads, 2)))
    try:
        m, mean, std, _ = load_model(args.model)
        imgs = read_idx(args.idx_images)
        labels = read_idx(args.idx_labels) if args.idx_labels else None
    except (OSError, ValueError, KeyError) as e:
        print("vit_predict.py: error: %s" % e, file=sys.stderr)
        return 2
    if imgs.ndim != 3 or imgs.shape[1] != m.image_size or imgs.shape[2] != m.image_size or m.channels != 1:
        print("vit_predict.py: error: images are %s, the model takes %dx%d with %d channel(s)" %
              (list(imgs.shape), m.image_size, m.image_size, m.channels), file=sys.stderr)
        return 2
    if labels is not None and labels.shape[0] != imgs.shape[0]:
        print("vit_predict.py: error: %d images but %d labels" % (imgs.shape[0], labels.shape[0]), file=sys.stderr)
        return 2
    n = imgs.shape[0] if args.limit is None else min(args.limit, imgs.shape[0])
    dt = torch.float64 if args.precision == "f64" else torch.float32
    m = m.to(dt).eval()
    preds = np.empty(n, dtype=np.int64)
    with torch.no_grad():
        for i in range(0, n, args.batch):
            x = (imgs[i:min(n, i + args.batch)].astype(np.float64) / 255.0 - mean[0]) / std[0]
            preds[i:i + x.shape[0]] = m(torch.from_numpy(x[:, None]).to(dt)).argmax(1).numpy()
    if args.out:
        with open(args.out, "w") as f:
            f.write("".join("%d\n" % p for p in preds))
    if labels is not None:
        acc = float(np.mean(preds == labels[:n]))
        print("top-1: %.2f%% (%d/%d)" % (100 * acc, int(np.sum(preds == labels[:n])), n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
