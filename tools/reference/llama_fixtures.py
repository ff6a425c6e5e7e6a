#!/usr/bin/python3
"""Write (or --check) the llama golden fixtures in tests/fixtures/llama/.

    llama_fixtures.py [--out tests/fixtures/llama] [--shared ../shared] [--check]

Files (see docs/llm.md for the layout):
  stories260K.golden.gguf   from ../shared/models/stories260K.bin + tok512.bin (converted in a temp
                            dir with tools/convert/llama2c.py, never committed): "tokens" i32 = BOS +
                            the 61 greedy tokens (the DESIGN.md story, ending "too high."), "logits"
                            f32 ne {512, 32} = the reference logits of tokens[0:32]; KVs golden.*
                            hold the sha256 of both source files and the text.
  llm-kjv.golden.gguf       models/llm-kjv.gguf (the bundled model, when present): "tokens" = BOS +
                            encode("And God said") + its greedy continuation, "logits" ne {1024, 1}
                            for position golden.logits_first_pos (the last prompt token);
                            golden.model_sha256 names the model it was made from.
  <name>.gguf + <name>.golden.gguf   random-weight llama models (dim 32 or 64, 2 layers, n_head 4,
                            GQA/MQA/MHA, tied/untied output, rope base 1e4 / 5e5, F32 / F16 / Q8_0 /
                            Q4_0 weights) with a 64-token synthetic SPM vocab; golden "tokens" i32 =
                            BOS + encode(golden.prompt), "logits" f32 ne {64, T} for every position.
Golden logits are computed in float64 from the weights exactly as stored (quantized weights
dequantized), then rounded to f32. --check regenerates everything in a temp dir and requires
byte-identical files (stories260K only when ../shared exists). Deterministic (fixed seeds).
"""

import argparse
import filecmp
import hashlib
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

STORY = ("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
         "One day, she saw a big, red ball. She wanted to play with it, but it was too high.")
STORY_NEW_TOKENS = 61  # 60 end at "too high"; the 61st is "."
STORY_LOGIT_POSITIONS = 32

# -------------------------------------------------------------------------------------------------
# synthetic 64-token SentencePiece vocab

SYN_BYTES = [0x0A, 0x21, 0x2C, 0x2E, 0x3F, 0xC3, 0xA9, 0xE2]
SYN_MERGES = ["\u2581t", "he", "\u2581a", "in", "er", "\u2581the", "an", "\u2581h", "ll", "lo", "el", "\u2581s",
              "\u2581c", "at", "\u2581cat", "\u2581hello", "hel", "\u2581hel", "on", "\u2581o", "or", "ing", "is",
              "\u2581is"]


def synthetic_vocab():
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in SYN_BYTES] + ["\u2581"]
    tokens += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    types = [lg.TOKEN_UNKNOWN, lg.TOKEN_CONTROL, lg.TOKEN_CONTROL] + [lg.TOKEN_BYTE] * len(SYN_BYTES) + \
        [lg.TOKEN_NORMAL] * 27
    scores = [0.0] * 3 + [0.0] * len(SYN_BYTES) + [-1000.0] * 27
    for i, m in enumerate(SYN_MERGES):
        tokens.append(m)
        types.append(lg.TOKEN_NORMAL)
        scores.append(-float(i + 1))
    assert len(tokens) == 62
    tokens += ["<pad>", "<extra>"]  # 64: two user-unused slots
    types += [lg.TOKEN_CONTROL, lg.TOKEN_UNUSED]
    scores += [0.0, 0.0]
    return tokens, scores, types


# -------------------------------------------------------------------------------------------------
# random models

CONFIGS = [
    # name, dim, n_head, n_kv, ffn, tied, rope base, weight type, token_embd type, seed, prompt
    dict(name="gqa2_untied_rope500k_f32", dim=32, n_head=4, n_kv=2, ffn=64, tied=False, base=500000.0,
         wtype="f32", etype="f32", seed=101, prompt="the cat, hello!"),
    dict(name="mqa_tied_f16", dim=32, n_head=4, n_kv=1, ffn=64, tied=True, base=10000.0,
         wtype="f16", etype="f16", seed=102, prompt="he is at the inn."),
    dict(name="gqa2_tied_q8_0", dim=32, n_head=4, n_kv=2, ffn=64, tied=True, base=10000.0,
         wtype="q8_0", etype="q8_0", seed=103, prompt="a cat is sitting?"),
    dict(name="gqa2_untied_d64_q4_0", dim=64, n_head=4, n_kv=2, ffn=96, tied=False, base=10000.0,
         wtype="q4_0", etype="f16", seed=104, prompt="hello world, caf\u00e9!"),
]
N_LAYER, N_VOCAB, N_CTX = 2, 64, 64


def _encode_weight(a, t):
    if t == "f32":
        return gguf.GGML_F32, lg.to_raw(a, gguf.GGML_F32)
    if t == "f16":
        return gguf.GGML_F16, lg.to_raw(a, gguf.GGML_F16)
    if t == "q8_0":
        return gguf.GGML_Q8_0, lg.quantize_q8_0(a)
    if t == "q4_0":
        return gguf.GGML_Q4_0, lg.quantize_q4_0(a)
    raise ValueError(t)


def random_model(cfg, path):
    rng = np.random.default_rng(cfg["seed"])
    hp = lg.Hparams(N_VOCAB, cfg["dim"], N_LAYER, cfg["n_head"], cfg["n_kv"], cfg["ffn"], N_CTX,
                    rms_eps=1e-5, rope_base=cfg["base"])
    hp.validate()
    w = gguf.GGUFWriter()
    lg.add_hparams(w, hp, name="random-" + cfg["name"])
    tokens, scores, types = synthetic_vocab()
    lg.add_spm_tokenizer(w, tokens, scores, types, pad=62)
    for name, shape in hp.shapes(cfg["tied"]):
        if len(shape) == 1:
            a = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
            w.add_tensor(name, a, gguf.GGML_F32)
            continue
        if name == "token_embd.weight":
            a = rng.standard_normal(shape).astype(np.float32)
            t = cfg["etype"]
        else:
            a = (rng.standard_normal(shape) / np.sqrt(shape[1])).astype(np.float32)
            t = cfg["wtype"]
        gt, raw = _encode_weight(a, t)
        lg.add_raw_tensor(w, name, shape, gt, raw)
    w.write(path)


def write_golden(path, tokens, logits, kvs):
    w = gguf.GGUFWriter()
    w.add_string("general.architecture", "golden")
    for k, v in kvs:
        if isinstance(v, str):
            w.add_string(k, v)
        else:
            w.add_u32(k, v)
    lg.add_i32_tensor(w, "tokens", tokens)
    w.add_tensor("logits", np.asarray(logits, dtype=np.float32), gguf.GGML_F32)
    w.write(path)


def make_random(out):
    for cfg in CONFIGS:
        mp = os.path.join(out, cfg["name"] + ".gguf")
        random_model(cfg, mp)
        m = LlamaRef(mp, torch.float64)
        ids = m.tok.encode(cfg["prompt"], bos=True)
        logits = m.forward(ids).numpy()
        write_golden(os.path.join(out, cfg["name"] + ".golden.gguf"), ids, logits,
                     [("golden.model", cfg["name"] + ".gguf"), ("golden.prompt", cfg["prompt"])])


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def make_stories(out, shared, verbose=True):
    mb = os.path.join(shared, "models", "stories260K.bin")
    tb = os.path.join(shared, "models", "tok512.bin")
    with tempfile.TemporaryDirectory() as td:
        gp = os.path.join(td, "stories260K.gguf")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert", "llama2c.py"), mb, "--tokenizer", tb,
                        "-o", gp, "-q"], check=True)
        m = LlamaRef(gp, torch.float64)
        ids = m.generate([m.tok.bos], STORY_NEW_TOKENS)
        text = m.tok.decode(ids)
        if text != STORY:
            raise SystemExit("stories260K: the reference generated %r, not the DESIGN.md story" % text)
        logits = m.forward(ids[:STORY_LOGIT_POSITIONS]).numpy()
        # smallest top-1 / top-2 gap along the greedy path (how robust the greedy test is)
        full = m.forward(ids[:-1]).numpy()
        s = np.sort(full, axis=1)
        margin = float((s[:, -1] - s[:, -2]).min())
    write_golden(os.path.join(out, "stories260K.golden.gguf"), ids, logits,
                 [("golden.source", "stories260K.bin"), ("golden.source_sha256", sha256(mb)),
                  ("golden.tokenizer_sha256", sha256(tb)), ("golden.text", text),
                  ("golden.new_tokens", STORY_NEW_TOKENS)])
    if verbose:
        print("stories260K: %d ids, greedy text matches DESIGN.md; min top-1/top-2 logit gap %.4f" % (len(ids), margin))


def find_shared():
    """$SPARROW_SHARED, else ../shared next to the checkout (or next to its worktree folder)."""
    for c in (os.environ.get("SPARROW_SHARED"), os.path.join(ROOT, "..", "shared"),
              os.path.join(ROOT, "..", "..", "shared")):
        if c and os.path.isdir(c):
            return c
    return os.path.join(ROOT, "..", "shared")


KJV_MODEL = os.path.join(ROOT, "models", "llm-kjv.gguf")
KJV_PROMPT = "And God said"
KJV_NEW_TOKENS = 48
KJV_MIN_GAP = 0.05


def make_kjv(out, verbose=True):
    """models/llm-kjv.gguf: BOS + encode(prompt) + up to 48 greedy tokens (cut before the first
    step whose top-1/top-2 logit gap is below 0.05, so an f32 runtime reproduces them), and the
    logits of the last prompt position (ne {n_vocab, 1}; golden.logits_first_pos = its index)."""
    m = LlamaRef(KJV_MODEL, torch.float64)
    prompt = m.tok.encode(KJV_PROMPT, bos=True)
    ids = m.generate(prompt, KJV_NEW_TOKENS, stop_at_eos=True)
    full = m.forward(ids[:-1]).numpy()
    s = np.sort(full, axis=1)
    gap = s[:, -1] - s[:, -2]
    n = len(ids)
    for i in range(len(prompt) - 1, len(ids) - 1):
        if gap[i] < KJV_MIN_GAP:
            n = i + 1
            break
    ids = ids[:n]
    logits = m.forward(prompt).numpy()[-1:]  # the last prompt position only (fixture size)
    text = m.tok.decode(ids)
    write_golden(os.path.join(out, "llm-kjv.golden.gguf"), ids, logits,
                 [("golden.model", "../../../models/llm-kjv.gguf"), ("golden.prompt", KJV_PROMPT),
                  ("golden.text", text), ("golden.model_sha256", sha256(KJV_MODEL)),
                  ("golden.logits_first_pos", len(prompt) - 1)])
    if verbose:
        print("llm-kjv: %d prompt + %d greedy tokens, min gap %.4f: %r"
              % (len(prompt), len(ids) - len(prompt), float(gap[len(prompt) - 1:n - 1].min()), text))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "llama"))
    ap.add_argument("--shared", default=find_shared(), help="default: $SPARROW_SHARED or ../shared")
    ap.add_argument("--check", action="store_true", help="regenerate in a temp dir and compare")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    have_shared = os.path.exists(os.path.join(args.shared, "models", "stories260K.bin"))
    if not have_shared:
        print("note: %s/models/stories260K.bin not found; skipping the stories260K golden" % args.shared)
    if not args.check:
        os.makedirs(args.out, exist_ok=True)
        make_random(args.out)
        if have_shared:
            make_stories(args.out, args.shared)
        if os.path.exists(KJV_MODEL):
            make_kjv(args.out)
        total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
        print("wrote %s (%d bytes in all)" % (args.out, total))
        return 0
    bad = 0
    with tempfile.TemporaryDirectory() as td:
        make_random(td)
        if have_shared:
            make_stories(td, args.shared)
        if os.path.exists(KJV_MODEL):
            make_kjv(td, verbose=False)
        for f in sorted(os.listdir(td)):
            ok = filecmp.cmp(os.path.join(td, f), os.path.join(args.out, f), shallow=False) \
                if os.path.exists(os.path.join(args.out, f)) else False
            print("%-40s %s" % (f, "ok" if ok else "DIFFERS"))
            bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
