#!/usr/bin/python3
"""Classify IDX images with a Sparrow NAT or BiFormer GGUF through the independent PyTorch reference.

The GGUF is read with tools/convert/gguf.py, the weights are loaded into
tools/reference/nat_model.py RefNAT or biformer_model.py RefBiFormer (general.architecture
"nat" / "biformer"; layouts of models/nat/nat.h and models/biformer/biformer.h undone there),
and the images (IDX ubyte, gzip or raw, [N, H, W], one channel) are preprocessed like Sparrow
does: pixel / 255, normalized with <arch>.image_mean / image_std, resized bilinearly (half-pixel
centres, no antialiasing) to the model's image size when it differs. Writes one predicted class
id per line (--out) and, with --idx-labels, prints "top-1: 89.12%".

Example:
  /usr/bin/python3 tools/reference/sparse_vision_predict.py models/nat-fmnist.gguf \\
      --idx-images /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz \\
      --idx-labels /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz --out preds.txt
"""

import argparse
import gzip
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "convert"))
from biformer_model import RefBiFormer  # noqa: E402
from nat_model import RefNAT  # noqa: E402
import gguf  # noqa: E402

ARCHS = {"nat": RefNAT, "biformer": RefBiFormer}


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


def read_png_gray8(path):
    """8-bit grayscale, non-interlaced PNG -> uint8 [H, W] (all five row filters)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s: not a PNG file" % path)
    pos, idat, w, h = 8, b"", None, None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or color != 0 or interlace != 0:
                raise ValueError("%s: only 8-bit grayscale non-interlaced PNGs are supported" % path)
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    out = np.zeros((h, w), dtype=np.int32)
    prev = np.zeros(w, dtype=np.int32)
    for r in range(h):
        ft = raw[r * (w + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=w, offset=r * (w + 1) + 1).astype(np.int32)
        cur = np.zeros(w, dtype=np.int32)
        for x in range(w):
            a = cur[x - 1] if x else 0
            b = prev[x]
            c = prev[x - 1] if x else 0
            if ft == 0:
                pr = 0
            elif ft == 1:
                pr = a
            elif ft == 2:
                pr = b
            elif ft == 3:
                pr = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + pr) & 255
        out[r] = prev = cur
    return out.astype(np.uint8)


def load_model(path):
    g = gguf.GGUFReader(path)
    arch = g.kv.get("general.architecture")
    if arch not in ARCHS:
        raise ValueError("%s: general.architecture is %r, not one of %s" % (path, arch, sorted(ARCHS)))
    m = ARCHS[arch].from_gguf_tensors(g.kv, g.arrays())
    m.eval()
    c = m.channels
    mean = np.array(g.kv.get(arch + ".image_mean", [0.0] * c), dtype=np.float64)
    std = np.array(g.kv.get(arch + ".image_std", [1.0] * c), dtype=np.float64)
    return m, mean, std


@torch.no_grad()
def predict(model, imgs, mean, std, batch=250, dtype=torch.float32):
    """imgs uint8 [N, H, W] (one channel) -> predicted class ids [N]."""
    out = []
    s = model.image_size
    for i in range(0, imgs.shape[0], batch):
        x = torch.from_numpy(imgs[i:i + batch].astype(np.float32) / 255.0)[:, None].to(dtype)
        x = (x - float(mean[0])) / float(std[0])
        if x.shape[2] != s or x.shape[3] != s:
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        out.append(model.to(dtype)(x).argmax(1).numpy())
    return np.concatenate(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", metavar="MODEL.gguf")
    ap.add_argument("--idx-images", required=True, metavar="F", help="IDX ubyte images [N,H,W] (gzip or raw)")
    ap.add_argument("--idx-labels", metavar="F", help="IDX ubyte labels [N]; enables the top-1 line")
    ap.add_argument("--out", metavar="FILE", help="write one predicted class id per line")
    ap.add_argument("--limit", type=int, help="only the first N images")
    ap.add_argument("--precision", choices=("f32", "f64"), default="f32",
                    help="arithmetic of the reference forward (default %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(args.threads, 2)))
    try:
        m, mean, std = load_model(args.model)
        imgs = read_idx(args.idx_images)
        labels = read_idx(args.idx_labels) if args.idx_labels else None
    except (OSError, ValueError, KeyError) as e:
        print("sparse_vision_predict.py: error: %s" % e, file=sys.stderr)
        return 2
    if imgs.ndim != 3 or m.channels != 1:
        print("sparse_vision_predict.py: error: images are %s; the model takes %d channel(s)" %
              (list(imgs.shape), m.channels), file=sys.stderr)
        return 2
    if args.limit:
        imgs = imgs[:args.limit]
        labels = labels[:args.limit] if labels is not None else None
    preds = predict(m, imgs, mean, std, dtype=torch.float64 if args.precision == "f64" else torch.float32)
    if args.out:
        with open(args.out, "w") as f:
            f.write("".join("%d\n" % p for p in preds))
    if labels is not None:
        print("top-1: %.2f%% (%d / %d)" % (100 * float((preds == labels).mean()), int((preds == labels).sum()),
                                           len(labels)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
