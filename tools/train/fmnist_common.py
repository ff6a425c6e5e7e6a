"""The Fashion-MNIST training loop shared by tools/train/train_nat.py and train_biformer.py.

Same recipe as tools/train/train_vit.py (whose data, augmentation and schedule helpers it
imports): AdamW (weight decay on matrices and conv kernels only), linear warm-up then per-step
cosine decay to 1 % of the peak, label smoothing, gradient clipping at norm 1, random crop with
zero padding + horizontal flip, batch 128, pixels / 255 normalized with the train-set mean/std.
The 10k test images are the held-out set: reported after each epoch, never used for a choice
during training; the last epoch is exported. Everything is seeded; a run split by --max-minutes
/ --resume takes the same steps as an uninterrupted one (RNG states are in the checkpoint).

An architecture plugs in with a Spec: its name, the model constructor (from args), the
checkpoint it writes in the official naming, and the converter command line.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
from train_vit import DEFAULT_DATA, LABELS, augment, load_split, lr_at  # noqa: E402
import sparse_vision_predict  # noqa: E402


class Spec:
    def __init__(self, arch, add_args, build, cfg_of, save_checkpoint, convert_cmd, describe):
        self.arch = arch                      # "nat" | "biformer"
        self.add_args = add_args              # (argparse parser) -> None: model flags
        self.build = build                    # (args) -> model (already initialized for training)
        self.cfg_of = cfg_of                  # (model) -> JSON-able config
        self.save_checkpoint = save_checkpoint  # (model, path) -> None (official naming)
        self.convert_cmd = convert_cmd        # (args, ckpt, labels_path, mean, std, out) -> argv
        self.describe = describe              # (model) -> markdown rows for the report's config table


@torch.no_grad()
def evaluate(model, x, y, batch=500):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / x.shape[0]


def parser(spec, doc):
    name = spec.arch
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=DEFAULT_DATA, help="Fashion-MNIST IDX directory (default %(default)s)")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "out", "train_" + name),
                    help="checkpoints, log, official-named checkpoint (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=15, help="total epochs (default %(default)s)")
    ap.add_argument("--batch", type=int, default=128, help="batch size (default %(default)s)")
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default %(default)s)")
    ap.add_argument("--wd", type=float, default=0.05, help="AdamW weight decay on matrices (default %(default)s)")
    ap.add_argument("--warmup-epochs", type=float, default=1.0, help="linear warm-up (default %(default)s)")
    ap.add_argument("--label-smoothing", type=float, default=0.1, help="(default %(default)s)")
    ap.add_argument("--pad", type=int, default=2, help="random-crop padding in pixels (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="seed for init, shuffling and augmentation")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s, at most 2 here)")
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="stop after the epoch that crosses this wall time (resume with --resume); 0 = no limit")
    ap.add_argument("--resume", action="store_true", help="continue from OUT_DIR/state.pt")
    ap.add_argument("--init-from", metavar="STATE.pt",
                    help="start a new stage (fresh optimizer and lr schedule, warm restart) from the weights of a "
                         "finished run's state.pt; its per-epoch history is carried into this run's report")
    ap.add_argument("--no-export", action="store_true", help="train only; skip GGUF, predictions and report")
    ap.add_argument("--export-only", action="store_true", help="skip training; export from OUT_DIR/state.pt")
    ap.add_argument("--gguf", default=os.path.join(ROOT, "models", "%s-fmnist.gguf" % name),
                    help="(default %(default)s)")
    ap.add_argument("--report", default=os.path.join(ROOT, "models", "%s-fmnist.md" % name),
                    help="(default %(default)s)")
    ap.add_argument("--preds", default=os.path.join(ROOT, "models", "%s-fmnist.t10k-preds.txt" % name),
                    help="PyTorch predictions on the 10k test images, from the GGUF (default %(default)s)")
    ap.add_argument("--samples-dir", default=os.path.join(ROOT, "models", "samples"),
                    help="sample PNGs to classify in the report (default %(default)s)")
    spec.add_args(ap)
    return ap


def main(spec, doc, argv=None):
    args = parser(spec, doc).parse_args(argv)
    torch.set_num_threads(max(1, min(args.threads, 2)))
    os.makedirs(args.out_dir, exist_ok=True)
    state_path = os.path.join(args.out_dir, "state.pt")
    log_path = os.path.join(args.out_dir, "train.log")

    tr_img, tr_lab = load_split(args.data_dir, "train")
    te_img, te_lab = load_split(args.data_dir, "t10k")
    mean = round(float(tr_img.mean() / 255.0), 4)
    std = round(float(tr_img.std() / 255.0), 4)
    x_tr = torch.from_numpy(tr_img.astype(np.float32) / 255.0)[:, None]
    y_tr = torch.from_numpy(tr_lab.astype(np.int64))
    x_te = (torch.from_numpy(te_img.astype(np.float32) / 255.0)[:, None] - mean) / std
    y_te = torch.from_numpy(te_lab.astype(np.int64))

    torch.manual_seed(args.seed)
    model = spec.build(args)
    cfg = spec.cfg_of(model)
    if model.image_size != 28:
        sys.exit("error: the models train on 28x28 images (image_size %d)" % model.image_size)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(args.seed + 1)
    steps_per_epoch = x_tr.shape[0] // args.batch
    total = steps_per_epoch * args.epochs
    warmup = int(args.warmup_epochs * steps_per_epoch)
    epoch0, history, stage, stages = 0, [], 1, []
    run_args = dict(vars(args))
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
                line = "epoch %2d  train_loss %.4f  test_top1 %.2f%%  lr %.2e  %.0fs" % (
                    rec["epoch"], rec["train_loss"], 100 * acc, rec["lr_end"], rec["seconds"])
                print(line, flush=True)
                log.write(line + "\n")
                log.flush()
                torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), gen=gen.get_state(), epoch=epoch + 1,
                                history=history, cfg=cfg, args=vars(args), mean=mean, std=std, stage=stage,
                                stages=stages), state_path + ".tmp")
                os.replace(state_path + ".tmp", state_path)
                if args.max_minutes and time.time() - t_start > 60 * args.max_minutes and epoch + 1 < args.epochs:
                    print("stopping after epoch %d (time budget); continue with --resume" % (epoch + 1))
                    return 3
    done = sum(1 for h in history if h.get("stage", 1) == stage)
    if done < args.epochs:
        sys.exit("error: training is not finished (%d of %d epochs)" % (done, args.epochs))
    if args.no_export:
        return 0
    return export(spec, args, model, cfg, mean, std, history, stages + [run_args], te_img, te_lab, x_te, y_te)


def export(spec, args, model, cfg, mean, std, history, run_args, te_img, te_lab, x_te, y_te):
    acc = evaluate(model, x_te, y_te)
    ckpt = os.path.join(args.out_dir, "%s-fmnist-official.pth" % spec.arch)
    spec.save_checkpoint(model, ckpt)
    labels_path = os.path.join(args.out_dir, "labels.txt")
    with open(labels_path, "w") as f:
        f.write("\n".join(LABELS) + "\n")
    subprocess.run(spec.convert_cmd(args, ckpt, labels_path, mean, std, args.gguf), check=True)
    size = os.path.getsize(args.gguf)
    if size > 2 * 1024 * 1024:
        sys.exit("error: %s is %d bytes (> 2 MiB)" % (args.gguf, size))

    # Predictions from the GGUF through the reference (not from the trained module): this also
    # checks the converter and the GGUF layouts.
    ref, ref_mean, ref_std = sparse_vision_predict.load_model(args.gguf)
    preds = sparse_vision_predict.predict(ref, te_img, ref_mean, ref_std)
    gguf_acc = float((preds == te_lab).mean())
    with open(args.preds, "w") as f:
        f.write("".join("%d\n" % p for p in preds))
    with torch.no_grad():
        model.eval()
        direct = model(x_te[:2000]).argmax(1).numpy()
    agree = float((direct == preds[:2000]).mean())
    if agree < 0.999:
        sys.exit("error: the GGUF's reference predictions agree with the trained module on only %.2f%%" %
                 (100 * agree))

    samples = []
    for name in sorted(os.listdir(args.samples_dir)):
        if not name.endswith(".png"):
            continue
        img = sparse_vision_predict.read_png_gray8(os.path.join(args.samples_dir, name))
        p = int(sparse_vision_predict.predict(ref, img[None], ref_mean, ref_std)[0])
        samples.append((name, p))

    log_copy = os.path.splitext(args.report)[0] + ".train.log"
    with open(os.path.join(args.out_dir, "train.log")) as src, open(log_copy, "w") as dst:
        dst.write(src.read())
    write_report(spec, args, model, cfg, mean, std, history, run_args, acc, gguf_acc, size, samples,
                 os.path.basename(log_copy))
    print("test top-1 %.2f%% (module) / %.2f%% (GGUF through the reference), %s: %d bytes" %
          (100 * acc, 100 * gguf_acc, args.gguf, size))
    return 0


def command_line(arch, a):
    script = "tools/train/train_%s.py" % arch
    cmd = ("/usr/bin/python3 %s --epochs %d --batch %d --lr %g --wd %g --warmup-epochs %g --seed %d --threads %d" %
           (script, a["epochs"], a["batch"], a["lr"], a["wd"], a["warmup_epochs"], a["seed"], a["threads"]))
    if a.get("init_from"):
        cmd += " --init-from " + os.path.relpath(a["init_from"], ROOT)
    if a.get("out_dir") and os.path.abspath(a["out_dir"]) != os.path.join(ROOT, "out", "train_" + arch):
        cmd += " --out-dir " + os.path.relpath(a["out_dir"], ROOT)
    return cmd


def write_report(spec, args, model, cfg, mean, std, history, all_args, acc, gguf_acc, size, samples, log_name):
    rows = "\n".join("| %d | %d.%d | %.4f | %.2f%% | %.2e | %.0f |" % (
        i + 1, h.get("stage", 1), h["epoch"], h["train_loss"], 100 * h["test_top1"], h["lr_end"], h["seconds"])
        for i, h in enumerate(history))
    n_params = sum(p.numel() for p in model.parameters())
    script = "tools/train/train_%s.py" % spec.arch
    a = all_args[0]
    cmd = "\n    ".join(command_line(spec.arch, x) for x in all_args)
    stage_txt = "" if len(all_args) == 1 else (
        "Training ran in %d stages; each later stage starts from the previous stage's final weights with a "
        "fresh AdamW state and its own warm-up + cosine schedule (a warm restart):\n\n" % len(all_args) + "\n".join(
            "* stage %d: %d epochs, peak lr %g, warm-up %g epoch, seed %d" % (
                i + 1, x["epochs"], x["lr"], x["warmup_epochs"], x["seed"]) for i, x in enumerate(all_args)) + "\n\n")
    smp = "\n".join("| `%s` | %s |" % (n, LABELS[p]) for n, p in samples)
    first, last = history[0]["train_loss"], history[-1]["train_loss"]
    best = max(history, key=lambda h: h["test_top1"])
    title = {"nat": "NAT", "biformer": "BiFormer"}[spec.arch]
    text = f"""# {spec.arch}-fmnist: a small {title} trained on Fashion-MNIST

`models/{spec.arch}-fmnist.gguf` ({size} bytes, F32) is a {title} classifier for 28x28 grayscale
Fashion-MNIST images, trained from scratch on the CPU with `{script}` (the reference module
`tools/reference/{spec.arch}_model.py`), saved with the official checkpoint tensor names and
converted with `tools/convert/{spec.arch}.py`.

## Config

| key | value |
|---|---|
{spec.describe(model)}
| parameters | {n_params} |
| normalization | pixel/255, then (x - {mean}) / {std} (train-set mean/std; in the GGUF as {spec.arch}.image_mean/std) |
| classes | {", ".join(LABELS)} |

## Training

AdamW (betas 0.9/0.999, weight decay {a['wd']} on matrices and conv kernels only), batch {a['batch']}, peak lr
{a['lr']}, linear warm-up ({a['warmup_epochs']} epoch) then per-step cosine decay to 1% of the peak, label
smoothing {a['label_smoothing']}, gradient clipping at norm 1, augmentation = random crop with {a['pad']}-pixel
zero padding + horizontal flip, {len(history)} epochs, torch {torch.__version__} on {a['threads']} CPU thread(s).
Train data: the 60k training images; the 10k test images are the held-out set (reported after
each epoch; no early stopping or checkpoint selection uses it: the last epoch is exported).
{stage_txt}
Commands (each can run in pieces with `--max-minutes` and `--resume`, which takes the same steps):

    {cmd}

Train loss went from {first:.4f} (first epoch) to {last:.4f} (last epoch); best test top-1
{100 * best['test_top1']:.2f}% at stage.epoch {best.get('stage', 1)}.{best['epoch']}. Per epoch (log: `{log_name}`):

| # | stage.epoch | train loss (label-smoothed, augmented) | test top-1 | lr at end | seconds |
|---|---|---|---|---|---|
{rows}

## Result

**Final test top-1 (PyTorch, 10k test images): {100 * acc:.2f}%** (the ViT, `models/vit-fmnist.gguf`: 88.67%).

`tools/reference/sparse_vision_predict.py models/{spec.arch}-fmnist.gguf` recomputes it from the GGUF
(independent forward: {100 * gguf_acc:.2f}%) and writes the predicted class per image; its output
for the 10k test images is committed as `models/{spec.arch}-fmnist.t10k-preds.txt` (one class id per
line, test-set order) for the C side's agreement check (tests/cli/accuracy_agreement.sh).

## Samples (`models/samples/`)

| file | PyTorch prediction |
|---|---|
{smp}
"""
    with open(args.report, "w") as f:
        f.write(text)
