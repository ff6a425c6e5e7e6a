#!/usr/bin/python3
"""Independent PyTorch implementation of CoreInfer's core-neuron selection (stability guided)
and of sparse decoding with the selected neurons, on top of llama_ref.py's forward; writes
(or --check's) the golden fixtures in tests/fixtures/coreinfer/.

    coreinfer_ref.py [--out tests/fixtures/coreinfer] [--shared ../shared] [--check]
    coreinfer_ref.py --model M.gguf -p TEXT [--beta 0.4 --alpha 0.2 --layers F-L --batch N]

Selection, per sparse layer, over the prompt's FFN activations a = silu(gate) * up [T, F]
(float64), fed in steps of `batch` rows as Sparrow's prefill does:
    P += count(a_step > 0); seen += rows of the step
    k = floor(alpha * P / seen)                     alpha rounded to float32 first (the C config)
    each token of the step: its k largest a[t, n] by signed value (ties: lower n) -> freq[n] += 1
    core = the max(1, floor(beta * F)) neurons of largest freq (ties: lower n), ascending
With one step (batch >= T) this is CoreInfer's int(token_sparsity * count(a > 0) / T) and
argsort(freq)[:int(F * sparsity)] with a fixed tie-break (its torch.argsort is not stable).
Default layers: CoreInfer's 6..26 of 32, scaled: first = (6L+16)//32, last = L-1-(5L+16)//32.

Sparse decode: positions >= len(prompt) see a with every non-core column of a sparse layer
zeroed (only core rows of gate/up and columns of down count); the prompt itself is dense.
The reference recomputes the whole prefix each time (no KV cache), so that is one forward
with a hook.

Golden files (GGUF, general.architecture "golden"): "tokens" i32 = the prompt ids + n_cont
continuation ids (the dense model's greedy continuation), "core.<L>" i32 per sparse layer,
"logits" f32 ne {n_vocab, n_cont} = the sparse model's logits after reading continuation
token j (position len(prompt) + j); KVs golden.model (path relative to the fixture dir, or
"stories260K" = converted at test time from ../shared), golden.alpha/beta (f32),
golden.first/last/batch/n_prompt (u32), golden.min_gap (f32: the smallest distance, relative
to the row's largest |a|, between a token's k-th and (k+1)-th activation, and between an
activation and 0 when one sign flip would change k — what a runtime's rounding would have to
exceed to change the selection; cases below 1e-5 are refused).
"""

import argparse
import filecmp
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "convert"))
sys.path.insert(0, HERE)
import gguf  # noqa: E402
import llama_gguf as lg  # noqa: E402
from llama_ref import LlamaRef  # noqa: E402


def f32(v):
    return float(np.float32(v))


def default_layers(n_layer):
    return (6 * n_layer + 16) // 32, n_layer - 1 - (5 * n_layer + 16) // 32


def n_core(beta, n_ff):
    c = math.floor(f32(beta) * n_ff)
    return min(n_ff, max(1, c))


def activations(model, tokens):
    """{layer: a [T, F] float64} of one dense forward."""
    acts = {}

    def hook(layer, f):
        acts[layer] = f.clone()
        return f

    model.forward(tokens, ffn_hook=hook)
    return acts


def select_layer(a, alpha, beta, batch):
    """Core ids (ascending list) and the selection margin for one layer's activations [T, F]."""
    T, F = a.shape
    alpha = f32(alpha)
    freq = torch.zeros(F, dtype=torch.long)
    pos, seen = 0, 0
    margin = math.inf
    for t0 in range(0, T, batch):
        chunk = a[t0:t0 + batch]
        pos += int((chunk > 0).sum())
        seen += chunk.shape[0]
        k = min(F, int(math.floor(alpha * pos / seen)))
        # a sign flip of one activation moves pos by 1: does that change k?
        k_fragile = any(min(F, int(math.floor(alpha * (pos + d) / seen))) != k for d in (-1, 1))
        for row in chunk:
            order = torch.argsort(-row, stable=True)  # value descending, ties: lower index
            if k > 0:
                freq[order[:k]] += 1
            scale = float(row.abs().max()) or 1.0
            s = row[order]
            if 0 < k < F:
                margin = min(margin, float(s[k - 1] - s[k]) / scale)
            if k_fragile:
                margin = min(margin, float(row.abs().min()) / scale)
    c = n_core(beta, F)
    core = torch.argsort(-freq, stable=True)[:c]
    return sorted(int(i) for i in core), margin


def select(model, tokens, alpha, beta, first, last, batch):
    acts = activations(model, tokens)
    cores, margin = {}, math.inf
    for layer in range(first, last + 1):
        cores[layer], m = select_layer(acts[layer], alpha, beta, batch)
        margin = min(margin, m)
    return cores, margin


def sparse_logits(model, prompt, cont, cores):
    """Logits [len(cont), V] after each continuation token, non-core neurons zeroed there."""
    P = len(prompt)

    def hook(layer, f):
        if layer not in cores:
            return f
        keep = torch.zeros(f.shape[1], dtype=torch.bool)
        keep[cores[layer]] = True
        f = f.clone()
        f[P:, ~keep] = 0
        return f

    return model.forward(list(prompt) + list(cont), ffn_hook=hook)[P:]


# -------------------------------------------------------------------------------------------------
# fixtures

CASES = [
    # name, model (relative to tests/fixtures/coreinfer), prompt, alpha, beta, layers (None: default), batch
    dict(name="gqa2_f32", model="../llama/gqa2_untied_rope500k_f32.gguf",
         prompt="the cat, hello! the cat is at the inn. hello cat", alpha=0.2, beta=0.4, layers=None, batch=64),
    dict(name="gqa2_f32_steps", model="../llama/gqa2_untied_rope500k_f32.gguf",
         prompt="the cat, hello! the cat is at the inn. hello cat", alpha=0.25, beta=0.5, layers=(1, 1), batch=4),
    dict(name="mqa_f16", model="../llama/mqa_tied_f16.gguf",
         prompt="he is at the inn. the cat is sitting?", alpha=0.2, beta=0.3, layers=None, batch=64),
    dict(name="kjv", model="../../../models/llm-kjv.gguf",
         prompt="And God said, Let there be light: and there was light. And God saw the light, that it was good",
         alpha=0.2, beta=0.4, layers=None, batch=64),
    dict(name="stories260K", model="stories260K",
         prompt="Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
         alpha=0.2, beta=0.4, layers=None, batch=16),
]
N_CONT = 8
MIN_MARGIN = 1e-5  # selections closer than this to a tie are too fragile for an f32 runtime


def write_golden(path, case, model, prompt, cont, cores, logits, first, last, margin):
    w = gguf.GGUFWriter()
    w.add_string("general.architecture", "golden")
    w.add_string("golden.model", case["model"])
    w.add_string("golden.prompt", case["prompt"])
    w.add_f32("golden.alpha", f32(case["alpha"]))
    w.add_f32("golden.beta", f32(case["beta"]))
    w.add_u32("golden.first", first)
    w.add_u32("golden.last", last)
    w.add_u32("golden.batch", case["batch"])
    w.add_u32("golden.n_prompt", len(prompt))
    w.add_f32("golden.min_gap", f32(margin))
    lg.add_i32_tensor(w, "tokens", list(prompt) + list(cont))
    for layer in range(first, last + 1):
        lg.add_i32_tensor(w, "core.%d" % layer, cores[layer])
    w.add_tensor("logits", np.asarray(logits, dtype=np.float32), gguf.GGML_F32)
    w.write(path)


def model_path(case, out, shared, tmp):
    if case["model"] != "stories260K":
        return os.path.normpath(os.path.join(ROOT, "tests", "fixtures", "coreinfer", case["model"]))
    mb = os.path.join(shared, "models", "stories260K.bin")
    tb = os.path.join(shared, "models", "tok512.bin")
    if not os.path.exists(mb):
        return None
    gp = os.path.join(tmp, "stories260K.gguf")
    if not os.path.exists(gp):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert", "llama2c.py"), mb, "--tokenizer", tb,
                        "-o", gp, "-q"], check=True)
    return gp


def make_case(case, out, shared, tmp, verbose=True):
    mp = model_path(case, out, shared, tmp)
    if mp is None:
        if verbose:
            print("%s: %s/models/stories260K.bin not found, skipped" % (case["name"], shared))
        return
    m = LlamaRef(mp, torch.float64)
    prompt = m.tok.encode(case["prompt"], bos=True)
    first, last = case["layers"] or default_layers(m.cfg.n_layer)
    cores, margin = select(m, prompt, case["alpha"], case["beta"], first, last, case["batch"])
    if margin < MIN_MARGIN:
        raise SystemExit("%s: selection margin %.3g is below %g: pick another prompt" % (case["name"], margin,
                                                                                         MIN_MARGIN))
    # an independent float32 pass must select the same neurons
    m32 = LlamaRef(mp, torch.float32)
    cores32, _ = select(m32, prompt, case["alpha"], case["beta"], first, last, case["batch"])
    if cores32 != cores:
        raise SystemExit("%s: float32 and float64 select different neurons" % case["name"])
    cont = m.generate(prompt, N_CONT, stop_at_eos=False)[len(prompt):]
    logits = sparse_logits(m, prompt, cont, cores).numpy()
    write_golden(os.path.join(out, case["name"] + ".golden.gguf"), case, m, prompt, cont, cores, logits, first, last,
                 margin)
    if verbose:
        print("%-16s %d prompt tokens, layers %d-%d, %d of %d neurons kept, batch %d, margin %.3g"
              % (case["name"], len(prompt), first, last, len(cores[first]), m.cfg.n_ff, case["batch"], margin))


def find_shared():
    for c in (os.environ.get("SPARROW_SHARED"), os.path.join(ROOT, "..", "shared"),
              os.path.join(ROOT, "..", "..", "shared")):
        if c and os.path.isdir(c):
            return c
    return os.path.join(ROOT, "..", "shared")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "coreinfer"))
    ap.add_argument("--shared", default=find_shared())
    ap.add_argument("--check", action="store_true", help="regenerate in a temp dir and compare")
    ap.add_argument("--model", help="print the core sets of one model instead")
    ap.add_argument("-p", "--prompt", default="")
    ap.add_argument("--alpha", type=float, default=0.2)
    ap.add_argument("--beta", type=float, default=0.4)
    ap.add_argument("--layers", default=None, help="FIRST-LAST (default: CoreInfer's range scaled)")
    ap.add_argument("--batch", type=int, default=64, help="prefill step (default 64)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    if args.model:
        m = LlamaRef(args.model, torch.float64)
        prompt = m.tok.encode(args.prompt, bos=True)
        first, last = (tuple(int(v) for v in args.layers.split("-")) if args.layers
                       else default_layers(m.cfg.n_layer))
        cores, margin = select(m, prompt, args.alpha, args.beta, first, last, args.batch)
        for layer, ids in cores.items():
            print("layer %d: %s" % (layer, " ".join(map(str, ids))))
        print("margin %.3g" % margin)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        if not args.check:
            os.makedirs(args.out, exist_ok=True)
            for case in CASES:
                make_case(case, args.out, args.shared, tmp)
            return 0
        gen = os.path.join(tmp, "gen")
        os.makedirs(gen)
        for case in CASES:
            make_case(case, gen, args.shared, tmp, verbose=False)
        bad = 0
        for f in sorted(os.listdir(gen)):
            ok = os.path.exists(os.path.join(args.out, f)) and filecmp.cmp(os.path.join(gen, f),
                                                                            os.path.join(args.out, f), shallow=False)
            print("%-36s %s" % (f, "ok" if ok else "DIFFERS"))
            bad += not ok
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
