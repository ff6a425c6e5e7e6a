#!/usr/bin/python3
"""Random-weight llama GGUF files at real model shapes, for speed benchmarks only.

    llm_models.py [--model tinyllama|smollm|all] [--out out/bench] [--type f16|f32] [--seed 0]
                  [--layers N] [--check]

  tinyllama  TinyLlama-1.1B shape: dim 2048, 22 layers, 32 heads, 4 kv heads (head_dim 64),
             FFN 5632, vocab 32000, ctx 2048, rope base 10000, eps 1e-5, untied output.
             F16: ~2.2 GB. Tokenizer: the tokenizer.* KVs of llama.cpp's vocab file
             ../shared/data/tokenizers/ggml-vocab-llama-spm.gguf (the Llama SPM vocab, 32000
             tokens; read at run time, never committed); without ../shared a synthetic SPM
             vocab of 32000 tokens is written instead (and the file's general.name says so).
  smollm     SmolLM-135M shape: dim 576, 30 layers, 9 heads, 3 kv heads (head_dim 64), FFN 1536,
             vocab 49152, ctx 2048, rope base 10000, eps 1e-5, tied output. F16: ~270 MB.
             Tokenizer: a synthetic byte-level BPE ("gpt2", pre "gpt-2"): 17 control tokens
             (<|endoftext|> = bos = eos = 0, <|im_start|>, <|im_end|>, 14 more), the 256 GPT-2
             byte characters, and 48879 generated merges (pairs of earlier tokens drawn with a
             bias to short, early tokens), so every text encodes and decodes.
Weights (seeded): linear and embedding weights N(0, 0.02), norm weights 1 + N(0, 0.02)^... i.e.
close to 1 like a trained model's, so activations stay finite. Output goes to out/bench/
(gitignored): tinyllama-1.1b-<type>.gguf, smollm-135m-<type>.gguf. Tensors are generated and
written one at a time (memory ~ one tensor); free disk is checked first. `sparrow quantize`
makes the Q8_0 / Q4_0 variants. --layers N writes a shallower variant (a quick test). --check
runs the PyTorch reference (float32) on 8 tokens of the SmolLM file and reports the logits.
"""

import argparse
import os
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "convert"))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import gguf  # noqa: E402
import llama_gguf as lg  # noqa: E402

MODELS = {
    "tinyllama": dict(file="tinyllama-1.1b", name="TinyLlama-1.1B shape (random weights)", n_vocab=32000,
                      n_embd=2048, n_layer=22, n_head=32, n_head_kv=4, n_ff=5632, n_ctx=2048, tied=False),
    "smollm": dict(file="smollm-135m", name="SmolLM-135M shape (random weights)", n_vocab=49152, n_embd=576,
                   n_layer=30, n_head=9, n_head_kv=3, n_ff=1536, n_ctx=2048, tied=True),
}
SMOLLM_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>", "<file_sep>",
                   "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>", "<jupyter_start>",
                   "<jupyter_text>", "<jupyter_code>", "<jupyter_output>", "<jupyter_script>", "<empty_output>"]


def find_shared():
    for c in (os.environ.get("SPARROW_SHARED"), os.path.join(ROOT, "..", "shared"),
              os.path.join(ROOT, "..", "..", "shared")):
        if c and os.path.isdir(c):
            return c
    return None


def synthetic_bpe(n_vocab, seed):
    """(tokens, merges, types) of a byte-level BPE vocab with exactly n_vocab tokens."""
    from llama_tok import bytes_to_unicode
    rng = np.random.default_rng(seed)
    b2u = bytes_to_unicode()
    # byte characters, most "text-like" first (letters, space image, digits, punctuation, rest)
    order = sorted(range(256), key=lambda b: (not chr(b).isalpha() or b > 127, b != 32, not chr(b).isdigit(), b))
    base = [b2u[b] for b in order]
    tokens = list(SMOLLM_SPECIALS) + sorted(base)
    types = [lg.TOKEN_CONTROL] * len(SMOLLM_SPECIALS) + [lg.TOKEN_NORMAL] * 256
    pool = list(base[:80])  # candidates for merging, grows with the merges
    have = set(tokens)
    merges = []
    while len(tokens) < n_vocab:
        n = len(pool)
        i = min(n - 1, int(rng.exponential(n / 4.0)))
        j = min(n - 1, int(rng.exponential(n / 4.0)))
        a, b = pool[i], pool[j]
        ab = a + b
        if ab in have or len(ab) > 12:
            continue
        have.add(ab)
        tokens.append(ab)
        types.append(lg.TOKEN_NORMAL)
        merges.append("%s %s" % (a, b))
        pool.append(ab)
    return tokens, merges, types


def synthetic_spm(n_vocab):
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + ["\u2581"]
    tokens += [chr(c) for c in range(33, 127)]
    types = [lg.TOKEN_UNKNOWN, lg.TOKEN_CONTROL, lg.TOKEN_CONTROL] + [lg.TOKEN_BYTE] * 256 + \
        [lg.TOKEN_NORMAL] * (len(tokens) - 259)
    letters = [chr(c) for c in range(97, 123)]
    k = 0
    while len(tokens) < n_vocab:  # "▁ab", "▁abc", ... : reachable by SPM merges of shorter ones
        w, x = "", k
        while True:
            w += letters[x % 26]
            x //= 26
            if x == 0:
                break
        k += 1
        for t in (w, "\u2581" + w):
            if t not in tokens[-2:] and len(tokens) < n_vocab and len(t) > 1:
                tokens.append(t)
                types.append(lg.TOKEN_NORMAL)
    scores = [0.0] * 259 + [-float(i) for i in range(len(tokens) - 259)]
    return tokens, scores, types


def write_model(key, out_dir, wtype, seed, layers=None, verbose=True):
    spec = dict(MODELS[key])
    if layers:
        spec["n_layer"] = layers
    hp = lg.Hparams(spec["n_vocab"], spec["n_embd"], spec["n_layer"], spec["n_head"], spec["n_head_kv"], spec["n_ff"],
                    spec["n_ctx"], rms_eps=1e-5, rope_base=10000.0)
    hp.validate()
    shapes = hp.shapes(spec["tied"])
    gt = lg.TYPE_BY_NAME[wtype]
    data_bytes = sum(int(np.prod(s)) * (4 if len(s) == 1 or gt == gguf.GGML_F32 else 2) for _, s in shapes)
    suffix = "-%dl" % layers if layers else ""
    path = os.path.join(out_dir, "%s%s-%s.gguf" % (spec["file"], suffix, wtype))
    os.makedirs(out_dir, exist_ok=True)
    free = shutil.disk_usage(out_dir).free
    if free < data_bytes + (256 << 20):
        raise SystemExit("llm_models.py: %s needs %.2f GB, only %.2f GB free in %s"
                         % (path, data_bytes / 1e9, free / 1e9, out_dir))
    w = lg.StreamingWriter(path + ".part")
    name = spec["name"]
    if key == "tinyllama":
        shared = find_shared()
        vf = os.path.join(shared, "data", "tokenizers", "ggml-vocab-llama-spm.gguf") if shared else None
        if vf and os.path.exists(vf):
            lg.add_hparams(w, hp, name=name, file_type=lg.FILE_TYPE[gt])
            lg.copy_tokenizer_kvs(w, gguf.GGUFReader(vf))
        else:
            lg.add_hparams(w, hp, name=name + ", synthetic vocab", file_type=lg.FILE_TYPE[gt])
            lg.add_spm_tokenizer(w, *synthetic_spm(hp.n_vocab))
    else:
        lg.add_hparams(w, hp, name=name, file_type=lg.FILE_TYPE[gt])
        tokens, merges, types = synthetic_bpe(hp.n_vocab, seed)
        lg.add_bpe_tokenizer(w, tokens, merges, types, bos=0, eos=0, unk=None, pre="gpt-2", add_bos=False)
    for n, s in shapes:
        w.declare_tensor(n, s, lg.tensor_type_for(n, s, gt))
    w.begin()
    rng = np.random.default_rng(seed)
    t0 = time.time()
    for n, s in shapes:
        if len(s) == 1:
            a = (1.0 + 0.02 * rng.standard_normal(s, dtype=np.float32)).astype(np.float32)
        else:
            a = rng.standard_normal(s, dtype=np.float32)
            a *= 0.02
        w.write_tensor_data(n, lg.to_raw(a, lg.tensor_type_for(n, s, gt)))
    size = w.finish()
    os.replace(path + ".part", path)
    if verbose:
        print("%s: %s, %d params, %d bytes (%.1f s)" % (path, name, hp.n_params(spec["tied"]), size, time.time() - t0))
    return path


def check(path):
    import torch
    from llama_ref import LlamaRef
    torch.set_num_threads(2)
    m = LlamaRef(path, torch.float32)
    ids = [0, 100, 2000, 31, 500, 7, 42, 1234] if m.tok.model == "gpt2" else [1, 100, 2000, 31, 500, 7, 42, 1234]
    L = m.forward(ids)
    print("check %s: logits finite %s, std %.4f, max |.| %.4f" % (os.path.basename(path), bool(torch.isfinite(L).all()),
                                                                  float(L.std()), float(L.abs().max())))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["tinyllama", "smollm", "all"], default="all")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "bench"))
    ap.add_argument("--type", choices=sorted(lg.TYPE_BY_NAME), default="f16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, help="write only this many layers (a smaller test file)")
    ap.add_argument("--check", action="store_true", help="run the reference on the SmolLM file")
    args = ap.parse_args(argv)
    keys = ["smollm", "tinyllama"] if args.model == "all" else [args.model]
    for k in keys:
        p = write_model(k, args.out, args.type, args.seed, args.layers)
        if args.check and k == "smollm":
            check(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
