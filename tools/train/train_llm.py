#!/usr/bin/python3
"""Train a small llama-architecture LM on the KJV corpus and export it as a llama GGUF.

    prep_kjv.py                                   # once: out/llm/kjv/{train,valid}.bin, tokenizer.json
    train_llm.py --steps 4000 --minutes 35        # what made models/llm-kjv.gguf (see models/llm-kjv.md)

Model (defaults): dim 128, 5 layers, 4 heads (head_dim 32), 2 kv heads (GQA), SwiGLU FFN 288,
RMSNorm (eps 1e-5), RoPE base 10000 on adjacent pairs (llama.cpp NORM order, so the exported
q/k need no permutation), context 256, output tied to the token embedding, vocab from
tokenizer.json (1024). ~0.93M parameters, F32 GGUF ~3.75 MB.
Training: AdamW (betas 0.9/0.95, weight decay 0.1 on 2-D weights), lr warmup 100 steps then
cosine to 10% over --steps, or over the --minutes wall-time budget when that runs out first (then
the run is not bit-reproducible; the log records the steps reached); grad clip 1.0; batch --batch
windows of --ctx + 1 tokens drawn at random from the train stream (a quarter of them start at a
document's BOS); with a step-driven schedule, deterministic for a given seed and thread count.
A checkpoint is saved every --ckpt-minutes and at the end (resume with --resume).
Evaluation (--eval-every and at the end): held-out chapters, each scored from its BOS with a
sliding window (stride ctx/2), every token after BOS predicted once: mean NLL per token,
perplexity per token = exp(NLL/token), per byte = exp(NLL_total / text bytes), bits per byte.
Export: F32 GGUF (tools/convert/llama_gguf.py) with the tokenizer; then the exported file is
re-loaded with the independent reference (tools/reference/llama_ref.py) and its NLL on a
held-out chapter must equal the training model's (the export check).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "convert"))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import gguf  # noqa: E402
import llama_gguf as lg  # noqa: E402


class Cfg:
    def __init__(self, vocab, dim=128, n_layer=5, n_head=4, n_kv=2, ffn=288, ctx=256, eps=1e-5, base=10000.0):
        self.vocab, self.dim, self.n_layer, self.n_head, self.n_kv = vocab, dim, n_layer, n_head, n_kv
        self.ffn, self.ctx, self.eps, self.base = ffn, ctx, eps, base
        self.hd = dim // n_head

    def hparams(self):
        return lg.Hparams(self.vocab, self.dim, self.n_layer, self.n_head, self.n_kv, self.ffn, self.ctx,
                          rms_eps=self.eps, rope_base=self.base)


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(c, T):
    i = torch.arange(c.hd // 2, dtype=torch.float64)
    inv = c.base ** (-2.0 * i / c.hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, rot):
    """x [..., T, hd] float: rotate adjacent pairs (2i, 2i+1) by the complex table rot [T, hd/2]
    (x[2i] + j x[2i+1]) * e^(j theta)."""
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * rot).flatten(-2)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.attn_norm = RMSNorm(c.dim, c.eps)
        self.wq = nn.Linear(c.dim, c.n_head * c.hd, bias=False)
        self.wk = nn.Linear(c.dim, c.n_kv * c.hd, bias=False)
        self.wv = nn.Linear(c.dim, c.n_kv * c.hd, bias=False)
        self.wo = nn.Linear(c.n_head * c.hd, c.dim, bias=False)
        self.ffn_norm = RMSNorm(c.dim, c.eps)
        self.w_gate = nn.Linear(c.dim, c.ffn, bias=False)
        self.w_up = nn.Linear(c.dim, c.ffn, bias=False)
        self.w_down = nn.Linear(c.ffn, c.dim, bias=False)

    def forward(self, x, rot, mask):
        """mask [g*T, T] (0 / -inf), the causal mask tiled for the g query heads of a kv head."""
        c = self.c
        B, T, _ = x.shape
        g = c.n_head // c.n_kv
        h = self.attn_norm(x)
        q = apply_rope(self.wq(h).view(B, T, c.n_head, c.hd).transpose(1, 2), rot)  # [B, H, T, hd]
        k = apply_rope(self.wk(h).view(B, T, c.n_kv, c.hd).transpose(1, 2), rot)  # [B, KV, T, hd]
        v = self.wv(h).view(B, T, c.n_kv, c.hd).transpose(1, 2)
        # query head h = kv * g + i uses kv head kv: group the g query heads of each kv head
        q = q.reshape(B * c.n_kv, g * T, c.hd)
        k = k.reshape(B * c.n_kv, T, c.hd)
        v = v.reshape(B * c.n_kv, T, c.hd)
        s = torch.baddbmm(mask.expand(B * c.n_kv, g * T, T), q, k.transpose(1, 2), alpha=1.0 / math.sqrt(c.hd))
        o = torch.bmm(torch.softmax(s, dim=-1), v)  # [B*KV, g*T, hd]
        o = o.view(B, c.n_head, T, c.hd).transpose(1, 2).reshape(B, T, c.n_head * c.hd)
        x = x + self.wo(o)
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class LM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.emb = nn.Embedding(c.vocab, c.dim)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.n_layer)])
        self.norm = RMSNorm(c.dim, c.eps)
        cos, sin = rope_tables(c, c.ctx)
        self.register_buffer("rot", torch.complex(cos, sin), persistent=False)
        for n, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * c.n_layer) if n.endswith(("wo.weight", "w_down.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        T = ids.shape[1]
        g = self.c.n_head // self.c.n_kv
        mask = torch.full((T, T), float("-inf")).triu(1).repeat(g, 1)
        x = self.emb(ids)
        rot = self.rot[:T]
        for b in self.blocks:
            x = b(x, rot, mask)
        return self.norm(x) @ self.emb.weight.T


# -------------------------------------------------------------------------------------------------


def load_stream(path):
    return np.fromfile(path, dtype="<u2").astype(np.int64)


def doc_starts(stream, bos):
    return np.flatnonzero(stream == bos)


def get_batch(stream, starts, rng, batch, ctx):
    n = len(stream) - ctx - 1
    pos = rng.integers(0, n, size=batch)
    aligned = rng.random(batch) < 0.25
    ds = starts[starts < n]
    pos[aligned] = ds[rng.integers(0, len(ds), size=int(aligned.sum()))]
    w = np.stack([stream[p:p + ctx + 1] for p in pos])
    t = torch.from_numpy(w)
    return t[:, :-1], t[:, 1:]


def split_docs(stream, bos):
    s = doc_starts(stream, bos)
    return [stream[a:b] for a, b in zip(s, list(s[1:]) + [len(stream)])]


@torch.no_grad()
def doc_nll(logits_fn, doc, ctx):
    """Sum of -log p(doc[i] | doc[:i]) for i >= 1 with a sliding window (stride ctx // 2); each
    token is scored once, with at least ctx // 2 tokens of context after the first window."""
    total, n = 0.0, 0
    stride = ctx // 2
    scored = 1  # next position to score
    start = 0
    while scored < len(doc):
        end = min(start + ctx, len(doc))
        x = doc[start:end]
        logits = logits_fn(x)  # [len(x), V] float
        lp = torch.log_softmax(logits.double(), dim=-1)
        for i in range(scored, end):
            total -= float(lp[i - 1 - start, int(doc[i])])
            n += 1
        scored = end
        if end == len(doc):
            break
        start += stride
        if start + ctx > len(doc):
            start = max(0, len(doc) - ctx)
    return total, n


def evaluate(model, docs, ctx, n_bytes, limit=None):
    model.eval()
    tot, n = 0.0, 0
    for d in docs[:limit]:
        t, k = doc_nll(lambda x: model(torch.from_numpy(np.asarray(x))[None])[0], d, ctx)
        tot += t
        n += k
    model.train()
    r = {"nll": tot / n, "ppl_token": math.exp(tot / n), "tokens": n}
    if n_bytes:
        r["ppl_byte"] = math.exp(tot / n_bytes)
        r["bits_per_byte"] = tot / n_bytes / math.log(2)
    return r


def export_gguf(model, c, vocab, path, name):
    hp = c.hparams()
    w = gguf.GGUFWriter()
    lg.add_hparams(w, hp, name=name, file_type=0)
    lg.add_spm_tokenizer(w, vocab["tokens"], vocab["scores"], vocab["types"], bos=1, eos=2, unk=0)
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    m = {"token_embd.weight": sd["emb.weight"], "output_norm.weight": sd["norm.weight"]}
    for i in range(c.n_layer):
        p, q = "blk.%d." % i, "blocks.%d." % i
        m.update({p + "attn_norm.weight": sd[q + "attn_norm.weight"], p + "attn_q.weight": sd[q + "wq.weight"],
                  p + "attn_k.weight": sd[q + "wk.weight"], p + "attn_v.weight": sd[q + "wv.weight"],
                  p + "attn_output.weight": sd[q + "wo.weight"], p + "ffn_norm.weight": sd[q + "ffn_norm.weight"],
                  p + "ffn_gate.weight": sd[q + "w_gate.weight"], p + "ffn_up.weight": sd[q + "w_up.weight"],
                  p + "ffn_down.weight": sd[q + "w_down.weight"]})
    for n, shape in hp.shapes(tied=True):
        if m[n].shape != tuple(shape):
            raise RuntimeError("export: %s has shape %s, expected %s" % (n, m[n].shape, shape))
        w.add_tensor(n, m[n], gguf.GGML_F32)
    return w.write(path)


def progress(step, elapsed, args):
    """Fraction of training done: by steps, or with --minutes by wall time (whichever is larger)."""
    p = (step - args.warmup) / max(1, args.steps - args.warmup)
    if args.minutes:
        p = max(p, elapsed / (args.minutes * 60.0))
    return min(1.0, max(0.0, p))


def lr_at(step, args, elapsed=0.0):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = progress(step, elapsed, args)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "4294967296",
              "MALLOC_TOP_PAD_": "268435456"}


def reexec_with_malloc_env():
    """glibc returns big freed blocks to the OS and page-faults them back on every step (several
    x slower elementwise ops here); re-run this script once with those thresholds raised."""
    if os.environ.get("SPARROW_TRAIN_NO_REEXEC") or all(k in os.environ for k in MALLOC_ENV):
        return
    env = dict(os.environ)
    env.update(MALLOC_ENV)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


def main(argv=None):
    if argv is None and __name__ == "__main__":
        reexec_with_malloc_env()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "out", "llm", "kjv"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "llm-kjv.gguf"))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=288)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (max 2); 1 is faster for this small model on a busy 2-core machine")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-docs", type=int, default=8, help="held-out chapters for the periodic evals")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--minutes", type=float, default=0,
                    help="wall-time budget: the cosine schedule follows max(step/steps, time/budget) and "
                         "training stops when either is done (a shared machine's speed varies)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--bench", type=int, default=0, help="only time this many steps and exit")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(2, args.threads)))
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    with open(os.path.join(args.data, "tokenizer.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(args.data, "prep.json")) as f:
        prep = json.load(f)
    train = load_stream(os.path.join(args.data, "train.bin"))
    valid = load_stream(os.path.join(args.data, "valid.bin"))
    starts = doc_starts(train, 1)
    vdocs = split_docs(valid, 1)
    c = Cfg(len(vocab["tokens"]), args.dim, args.layers, args.heads, args.kv_heads, args.ffn, args.ctx)
    c.hparams().validate()
    model = LM(c)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    ckpt = os.path.join(args.data, "ckpt.pt")
    step, elapsed, log = 0, 0.0, []
    if args.resume and os.path.exists(ckpt):
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, elapsed, log = st["step"], st["elapsed"], st["log"]
        rng = np.random.default_rng([args.seed, step])
        torch.manual_seed(args.seed + step)
        print("resumed at step %d (%.1f min)" % (step, elapsed / 60), flush=True)
    print("params %d, train %d tokens, valid %d tokens (%d chapters), %d threads"
          % (n_params, len(train), len(valid), len(vdocs), torch.get_num_threads()), flush=True)

    def save():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": elapsed,
                    "log": log, "args": vars(args)}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)

    t_last = time.time()
    t_ckpt = t_last
    ema = None
    n_steps = args.bench or args.steps
    while step < n_steps:
        lr = lr_at(step, args, elapsed)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = get_batch(train, starts, rng, args.batch, args.ctx)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, c.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        opt.step()
        step += 1
        now = time.time()
        elapsed += now - t_last
        t_last = now
        lv = float(loss)
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        if step % 50 == 0 or step == 1:
            tps = step * args.batch * args.ctx / max(elapsed, 1e-9)
            print("step %5d  loss %.4f  ema %.4f  gnorm %.2f  lr %.2e  %.1f min  %.0f tok/s"
                  % (step, lv, ema, gn, lr, elapsed / 60, tps), flush=True)
            log.append({"step": step, "loss": lv, "ema": ema, "lr": lr, "minutes": elapsed / 60})
        if args.bench:
            continue
        if step % args.eval_every == 0 and step < n_steps:
            r = evaluate(model, vdocs, c.ctx, None, limit=args.eval_docs)
            print("eval step %d: held-out (%d chapters) nll %.4f ppl/token %.2f" % (step, args.eval_docs, r["nll"],
                                                                                   r["ppl_token"]), flush=True)
            log.append({"step": step, "eval_nll_sub": r["nll"]})
        if now - t_ckpt > args.ckpt_minutes * 60:
            save()
            t_ckpt = time.time()
        if args.minutes and step >= args.warmup and progress(step, elapsed, args) >= 1.0:
            print("stopping at step %d: the schedule is complete (%.1f min)" % (step, elapsed / 60), flush=True)
            break
    if args.bench:
        print("bench: %.0f tokens/s" % (step * args.batch * args.ctx / elapsed))
        return 0
    save()
    # final train loss: mean over the last 200 steps' logged losses
    tail = [e["loss"] for e in log if "loss" in e][-5:]
    r = evaluate(model, vdocs, c.ctx, prep["valid_doc_bytes"])
    rt = evaluate(model, split_docs(train, 1)[::20], c.ctx, None)
    print("final: step %d, %.1f min; train loss (last logged) %.4f; train subset (every 20th chapter) nll %.4f; "
          "held-out nll %.4f, ppl/token %.3f, ppl/byte %.4f, bits/byte %.4f over %d tokens"
          % (step, elapsed / 60, np.mean(tail), rt["nll"], r["nll"], r["ppl_token"], r["ppl_byte"],
             r["bits_per_byte"], r["tokens"]), flush=True)
    size = export_gguf(model, c, vocab, args.out, "llm-kjv")
    # export check with the independent reference
    from llama_ref import LlamaRef
    ref = LlamaRef(args.out, torch.float64)
    d = vdocs[0]
    t_ref, _ = doc_nll(lambda x: ref.forward(list(map(int, x))), d, c.ctx)
    model.eval()
    t_me, k = doc_nll(lambda x: model(torch.from_numpy(np.asarray(x))[None])[0], d, c.ctx)
    diff = abs(t_ref - t_me) / k
    print("export check: held-out chapter 0, %d tokens: nll/token train model %.6f, reference on GGUF %.6f "
          "(|diff| %.2e)" % (k, t_me / k, t_ref / k, diff), flush=True)
    if diff > 1e-4:
        raise SystemExit("export check failed")
    summary = {"params": n_params, "steps": step, "minutes": round(elapsed / 60, 1), "batch": args.batch,
               "ctx": args.ctx, "train_loss_last": float(np.mean(tail)), "train_subset_nll": rt["nll"],
               "valid": r, "gguf_bytes": size, "export_check_diff": diff, "args": vars(args)}
    with open(os.path.join(args.data, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
