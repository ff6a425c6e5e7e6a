#!/usr/bin/python3
"""Train a small ViT on Fashion-MNIST on the CPU and export it for Sparrow.

Data: the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist,
60k train / 10k test IDX files, gzip). The 10k test set is the held-out set: it is
only used to report accuracy after each epoch, never for any choice during training.

Model: tools/reference/vit_model.py RefViT (channels 1, 28x28, patch 4 -> 49 patch
tokens + cls). Pixels are scaled to [0,1] and normalized with the train-set mean/std
(written into the GGUF as vit.image_mean / vit.image_std).
Recipe: AdamW, linear warm-up then cosine decay (per step), label smoothing, random
crop with 2-pixel zero padding + horizontal flip. Everything is seeded; with the same
thread count a run is reproducible, and a run split by --max-minutes / --resume takes
the same steps as an uninterrupted one (the RNG states are saved in the checkpoint).

Stages (all in --out-dir, default out/train_vit, which is gitignored):
  state.pt            resume state, written after every epoch
  train.log           one line per epoch
  vit-fmnist-timm.pth the final weights in timm naming (state dict)
Then, unless --no-export: tools/convert/vit.py writes --gguf (default
models/vit-fmnist.gguf), sample PNGs go to --samples-dir, and a report to --report.

Example (the command used for models/vit-fmnist.gguf is recorded in models/vit-fmnist.md):
  /usr/bin/python3 tools/train/train_vit.py --epochs 15 --max-minutes 24
  /usr/bin/python3 tools/train/train_vit.py --epochs 15 --max-minutes 24 --resume   # until done
"""

import argparse
import gzip
import json
import math
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
from vit_model import RefViT  # noqa: E402

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
          "Ankle boot"]
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """IDX file (gzip or raw) -> numpy array (uint8 images [N,H,W] or labels [N])."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    nd = raw[3]
    dims = struct.unpack(">%dI" % nd, raw[4:4 + 4 * nd])
    n = int(np.prod(dims))
    if len(raw) != 4 + 4 * nd + n:
        raise ValueError("%s: size %d does not match dims %s" % (path, len(raw), dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_split(data_dir, split):
    img = read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte.gz" % split))
    lab = read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte.gz" % split))
    if img.shape[0] != lab.shape[0]:
        raise ValueError("%s: %d images but %d labels" % (split, img.shape[0], lab.shape[0]))
    return img, lab


def augment(x, gen, pad):
    """Random crop with zero padding (in raw pixel space) + horizontal flip, per sample."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    rows = (dy[:, None] + torch.arange(h)[None, :])  # [n,h]
    cols = (dx[:, None] + torch.arange(w)[None, :])  # [n,w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx_n = torch.arange(n)[:, None, None]
    out = xp[idx_n, 0, rows[:, :, None], cols[:, None, :]]
    return out[:, None]


def lr_at(step, total, warmup, base, final_frac=0.01):
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def evaluate(model, x, y, batch=500):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / x.shape[0]


def write_png_gray8(path, img):
    """Write a uint8 [H,W] array as an 8-bit grayscale PNG (no filtering)."""
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def slug(label):
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-").replace("--", "-")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=DEFAULT_DATA, help="Fashion-MNIST IDX directory (default %(default)s)")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "out", "train_vit"),
                    help="checkpoints, log, timm state dict (default %(default)s)")
    ap.add_argument("--dim", type=int, default=96, help="embedding dim D (default %(default)s)")
    ap.add_argument("--depth", type=int, default=4, help="blocks (default %(default)s)")
    ap.add_argument("--heads", type=int, default=4, help="attention heads (default %(default)s)")
    ap.add_argument("--mlp", type=int, default=192, help="MLP hidden size F (default %(default)s)")
    ap.add_argument("--patch", type=int, default=4, help="patch size (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=15, help="total epochs (default %(default)s)")
    ap.add_argument("--batch", type=int, default=128, help="batch size (default %(default)s)")
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default %(default)s)")
    ap.add_argument("--wd", type=float, default=0.05, help="AdamW weight decay on matrices (default %(default)s)")
    ap.add_argument("--warmup-epochs", type=float, default=1.0, help="linear warm-up (default %(default)s)")
    ap.add_argument("--label-smoothing", type=float, default=0.1, help="(default %(default)s)")
    ap.add_argument("--pad", type=int, default=2, help="random-crop padding in pixels (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="seed for init, shuffling and augmentation")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s, at most 2 here)")
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="stop after the epoch that crosses this wall time (resume later with --resume); 0 = no limit")
    ap.add_argument("--resume", action="store_true", help="continue from OUT_DIR/state.pt")
    ap.add_argument("--init-from", metavar="STATE.pt",
                    help="start a new stage (fresh optimizer and lr schedule, warm restart) from the weights of a "
                         "finished run's state.pt; its per-epoch history is carried into this run's report")
    ap.add_argument("--no-export", action="store_true", help="train only; skip GGUF, samples and report")
    ap.add_argument("--export-only", action="store_true", help="skip training; export from OUT_DIR/state.pt")
    ap.add_argument("--gguf", default=os.path.join(ROOT, "models", "vit-fmnist.gguf"), help="(default %(default)s)")
    ap.add_argument("--samples-dir", default=os.path.join(ROOT, "models", "samples"), help="(default %(default)s)")
    ap.add_argument("--report", default=os.path.join(ROOT, "models", "vit-fmnist.md"), help="(default %(default)s)")
    args = ap.parse_args()

    torch.set_num_threads(max(1, min(args.threads, 2)))
    os.makedirs(args.out_dir, exist_ok=True)
    state_path = os.path.join(args.out_dir, "state.pt")
    log_path = os.path.join(args.out_dir, "train.log")

    tr_img, tr_lab = load_split(args.data_dir, "train")
    te_img, te_lab = load_split(args.data_dir, "t10k")
    # Normalization from the train set only, rounded so the GGUF holds exactly what training used.
    mean = round(float(tr_img.mean() / 255.0), 4)
    std = round(float(tr_img.std() / 255.0), 4)
    x_tr = torch.from_numpy(tr_img.astype(np.float32) / 255.0)[:, None]
    y_tr = torch.from_numpy(tr_lab.astype(np.int64))
    x_te = (torch.from_numpy(te_img.astype(np.float32) / 255.0)[:, None] - mean) / std
    y_te = torch.from_numpy(te_lab.astype(np.int64))

    cfg = dict(image_size=28, patch=args.patch, channels=1, dim=args.dim, depth=args.depth, heads=args.heads,
               ffn=args.mlp, classes=10)
    torch.manual_seed(args.seed)
    model = RefViT(**cfg)
    model.init_for_training(args.seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and n != "pos"]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and n != "pos")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(args.seed + 1)
    steps_per_epoch = x_tr.shape[0] // args.batch  # drop the last partial batch
    total = steps_per_epoch * args.epochs
    warmup = int(args.warmup_epochs * steps_per_epoch)
    epoch0, history, stage, stages = 0, [], 1, []
    run_args = dict(vars(args))  # the settings of this stage, as trained (kept across --resume)
    if args.init_from and not (args.resume or args.export_only):
        st0 = torch.load(args.init_from, map_location="cpu")
        if st0["cfg"] != cfg:
            sys.exit("error: %s has model config %s, not %s" % (args.init_from, st0["cfg"], cfg))
        if st0["epoch"] != st0["args"]["epochs"]:
            sys.exit("error: %s is an unfinished run" % args.init_from)
        model.load_state_dict(st0["model"])
        stage = st0.get("stage", 1) + 1
        stages = st0.get("stages", []) + [st0["args"]]
        history = [dict(h, stage=h.get("stage", 1)) for h in st0["history"]]
        print("stage %d, starting from the weights of %s" % (stage, args.init_from), flush=True)

    if args.resume or args.export_only:
        st = torch.load(state_path, map_location="cpu")
        if st["cfg"] != cfg or st["args"]["seed"] != args.seed or st["args"]["epochs"] != args.epochs:
            sys.exit("error: %s was made with other settings (cfg %s, seed %s, epochs %s)" %
                     (state_path, st["cfg"], st["args"]["seed"], st["args"]["epochs"]))
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        epoch0, history = st["epoch"], st["history"]
        stage, stages = st.get("stage", 1), st.get("stages", [])
        run_args = dict(st["args"])
        print("loaded %s (after epoch %d)" % (state_path, epoch0), flush=True)

    t_start = time.time()
    if not args.export_only:
        with open(log_path, "a") as log:
            if epoch0 == 0 and args.init_from:
                with open(os.path.join(os.path.dirname(os.path.abspath(args.init_from)), "train.log")) as prev:
                    log.write(prev.read())
            if epoch0 == 0:
                log.write("# %s\n# cfg %s mean %.4f std %.4f\n" % (" ".join(sys.argv), json.dumps(cfg), mean, std))
            for epoch in range(epoch0, args.epochs):
                t0 = time.time()
                perm = torch.randperm(x_tr.shape[0], generator=gen)
                loss_sum, n_seen = 0.0, 0
                model.train()
                for i in range(steps_per_epoch):
                    step = epoch * steps_per_epoch + i
                    for g in opt.param_groups:
                        g["lr"] = lr_at(step, total, warmup, args.lr)
                    idx = perm[i * args.batch:(i + 1) * args.batch]
                    xb = (augment(x_tr[idx], gen, args.pad) - mean) / std
                    loss = F.cross_entropy(model(xb), y_tr[idx], label_smoothing=args.label_smoothing)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    opt.step()
                    loss_sum += loss.item() * idx.numel()
                    n_seen += idx.numel()
                acc = evaluate(model, x_te, y_te)
                rec = dict(stage=stage, epoch=epoch + 1, train_loss=loss_sum / n_seen, test_top1=acc,
                           lr_end=opt.param_groups[0]["lr"], seconds=time.time() - t0)
                history.append(rec)
                line = ("stage %d " % stage if stage > 1 else "") + "epoch %2d  train_loss %.4f  test_top1 %.2f%%  lr %.2e  %.0fs" % (
                    rec["epoch"], rec["train_loss"], 100 * acc, rec["lr_end"], rec["seconds"])
                print(line, flush=True)
                log.write(line + "\n")
                log.flush()
                torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), gen=gen.get_state(), epoch=epoch + 1,
                                history=history, cfg=cfg, args=vars(args), mean=mean, std=std, stage=stage,
                                stages=stages),
                           state_path + ".tmp")
                os.replace(state_path + ".tmp", state_path)
                if args.max_minutes and time.time() - t_start > 60 * args.max_minutes and epoch + 1 < args.epochs:
                    print("stopping after epoch %d (time budget); continue with --resume" % (epoch + 1))
                    return 3
        epoch0 = args.epochs

    done = sum(1 for h in history if h.get("stage", 1) == stage)
    if done < args.epochs:
        sys.exit("error: training is not finished (%d of %d epochs)" % (done, args.epochs))
    if args.no_export:
        return 0
    return export(args, model, cfg, mean, std, history, stages + [run_args], te_img, te_lab, x_te, y_te)


def export(args, model, cfg, mean, std, history, all_args, te_img, te_lab, x_te, y_te):
    acc = evaluate(model, x_te, y_te)
    ckpt = os.path.join(args.out_dir, "vit-fmnist-timm.pth")
    torch.save(model.timm_state_dict(), ckpt)
    labels_path = os.path.join(args.out_dir, "labels.txt")
    with open(labels_path, "w") as f:
        f.write("\n".join(LABELS) + "\n")
    cmd = [sys.executable, os.path.join(ROOT, "tools", "convert", "vit.py"), ckpt, "-o", args.gguf,
           "--heads", str(cfg["heads"]), "--labels", labels_path, "--mean", repr(mean), "--std", repr(std),
           "--name", "vit-fmnist"]
    subprocess.run(cmd, check=True)
    size = os.path.getsize(args.gguf)
    if size > 2 * 1024 * 1024:
        sys.exit("error: %s is %d bytes (> 2 MiB)" % (args.gguf, size))

    # One sample per class: the first test image of each class, exactly as stored in the dataset.
    os.makedirs(args.samples_dir, exist_ok=True)
    samples = []
    for c in range(10):
        i = int(np.nonzero(te_lab == c)[0][0])
        name = "%04d-%s.png" % (i, slug(LABELS[c]))
        write_png_gray8(os.path.join(args.samples_dir, name), te_img[i])
        with torch.no_grad():
            pred = int(model(x_te[i:i + 1]).argmax(1))
        samples.append((name, c, pred))

    log_copy = os.path.splitext(args.report)[0] + ".train.log"
    with open(os.path.join(args.out_dir, "train.log")) as src, open(log_copy, "w") as dst:
        dst.write(src.read())
    write_report(args, cfg, sum(p.numel() for p in model.parameters()), mean, std, history, all_args, acc, size,
                 samples, os.path.basename(log_copy))
    print("test top-1 %.2f%%, %s: %d bytes" % (100 * acc, args.gguf, size))
    return 0


def command_line(a):
    cmd = ("/usr/bin/python3 tools/train/train_vit.py --epochs %d --batch %d --lr %g --wd %g --warmup-epochs %g "
           "--dim %d --depth %d --heads %d --mlp %d --seed %d --threads %d" %
           (a["epochs"], a["batch"], a["lr"], a["wd"], a["warmup_epochs"], a["dim"], a["depth"], a["heads"], a["mlp"],
            a["seed"], a["threads"]))
    if a.get("init_from"):
        cmd += " --init-from " + os.path.relpath(a["init_from"], ROOT)
    if os.path.abspath(a["out_dir"]) != os.path.join(ROOT, "out", "train_vit"):
        cmd += " --out-dir " + os.path.relpath(a["out_dir"], ROOT)
    return cmd


def write_report(args, cfg, n_params, mean, std, history, all_args, acc, size, samples, log_name):
    rows = "\n".join("| %d | %d.%d | %.4f | %.2f%% | %.2e | %.0f |" % (
        i + 1, h.get("stage", 1), h["epoch"], h["train_loss"], 100 * h["test_top1"], h["lr_end"], h["seconds"])
        for i, h in enumerate(history))
    first, last = history[0]["train_loss"], history[-1]["train_loss"]
    best = max(history, key=lambda h: h["test_top1"])
    cmds = "\n".join("    " + command_line(a) for a in all_args)
    stage_txt = "" if len(all_args) == 1 else (
        " Training ran in %d stages; each later stage starts from the previous stage's final weights with a "
        "fresh AdamW state and its own warm-up + cosine schedule (a warm restart):\n\n" % len(all_args) + "\n".join(
            "* stage %d: %d epochs, peak lr %g, seed %d" % (i + 1, a["epochs"], a["lr"], a["seed"])
            for i, a in enumerate(all_args)) + "\n")
    smp = "\n".join("| `%s` | %s | %s |" % (n, LABELS[c], LABELS[p]) for n, c, p in samples)
    text = f"""# vit-fmnist: a small ViT trained on Fashion-MNIST

`models/vit-fmnist.gguf` ({size} bytes, F32) is a ViT classifier for 28x28 grayscale
Fashion-MNIST images, trained from scratch on the CPU with `tools/train/train_vit.py`
and converted with `tools/convert/vit.py` (timm-named checkpoint -> GGUF).

## Config

| key | value |
|---|---|
| image / channels / patch | 28 / 1 / {cfg['patch']} (49 patch tokens + cls = 50 tokens) |
| dim D / depth / heads / MLP F | {cfg['dim']} / {cfg['depth']} / {cfg['heads']} / {cfg['ffn']} |
| parameters | {n_params} |
| pooling / LayerNorm eps / GELU | cls / 1e-6 / erf |
| normalization | pixel/255, then (x - {mean}) / {std} (train-set mean/std; in the GGUF as vit.image_mean/std) |
| classes | {", ".join(LABELS)} |

## Training

AdamW (betas 0.9/0.999, weight decay {all_args[-1]['wd']} on matrices only), batch {all_args[-1]['batch']}, linear
warm-up then per-step cosine decay to 1% of the peak lr, label smoothing {all_args[-1]['label_smoothing']},
gradient clipping at norm 1, augmentation = random crop with {all_args[-1]['pad']}-pixel zero padding +
horizontal flip, {len(history)} epochs in all, torch {torch.__version__} on {all_args[-1]['threads']} CPU thread(s).
Train data: the 60k training images; the 10k test images are the held-out set (reported
after each epoch; no early stopping or checkpoint selection uses it: the last epoch is exported).{stage_txt}

Commands (each run in pieces with `--max-minutes 24` and `--resume`, which takes the same steps):

{cmds}

Train loss went from {first:.4f} (first epoch) to {last:.4f} (last epoch); best test top-1
{100 * best['test_top1']:.2f}% at stage {best.get('stage', 1)} epoch {best['epoch']}. Per epoch (log: `{log_name}`):

| # | stage.epoch | train loss (label-smoothed, augmented) | test top-1 | lr at end | seconds |
|---|---|---|---|---|---|
{rows}

## Result

**Final test top-1 (PyTorch, 10k test images): {100 * acc:.2f}%.**

`tools/reference/vit_predict.py models/vit-fmnist.gguf --idx-images
/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --idx-labels
/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz --out preds.txt` recomputes it from
the GGUF (independent forward) and writes the predicted class per image.

## Samples (`models/samples/`, the first test image of each class, 8-bit grayscale PNG)

| file | label | PyTorch prediction |
|---|---|---|
{smp}
"""
    with open(args.report, "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
