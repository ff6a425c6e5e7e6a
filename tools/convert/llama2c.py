#!/usr/bin/python3
"""Convert a llama2.c checkpoint + tokenizer to a llama GGUF (numpy only, fast).

    llama2c.py MODEL.bin --tokenizer TOK.bin -o OUT.gguf [--type f32|f16] [--name NAME]

Checkpoint formats (karpathy/llama2.c export.py):
  legacy (version 0): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
      seq_len; vocab_size < 0 => an unshared classifier follows), then f32 arrays
      token_embedding_table [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim],
      wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim], w2 [L, dim,
      hidden], w3 [L, hidden, dim], rms_final [dim], freq_cis_real, freq_cis_imag [seq_len,
      head_size/2] (skipped), [wcls [vocab, dim]].
  version 1 ("ak42" magic, int32 version 1): the same 7 int32, a uint8 shared-classifier flag,
      zero padding to 256 bytes, then f32 rms_att (all layers), rms_ffn, rms_final, token
      embeddings, wq, wk, wv, wo, w1, w2, w3, [wcls]; no freq_cis.
  (version 2, llama2.c's own int8 groups, is not supported.)
Every weight is PyTorch [out, in] row-major, which is GGUF's layout unchanged. llama2.c's run.c
rotates adjacent pairs (x[2i], x[2i+1]) with theta_i = pos * 10000^(-2i/head_size) — exactly
llama.cpp's NORM RoPE — so q/k are NOT permuted. w1 = ffn_gate, w3 = ffn_up, w2 = ffn_down.
RMSNorm epsilon is 1e-5 (run.c).

Tokenizer (llama2.c tokenizer.bin): int32 max_token_length, then per token f32 score, int32 len,
bytes. llama2.c's exporter replaced SentencePiece's U+2581 by ' ' and wrote BOS/EOS as
"\\n<s>\\n" / "\\n</s>\\n"; this converter undoes both (' ' -> U+2581; <s>, </s>) so the vocab is
a SentencePiece vocab again (tokenizer.ggml.model "llama"). Types: "<0xHH>" -> 6 byte, id 0
<unk> -> 2 unknown, <s>/</s> -> 3 control, others 1. llama2.c's encode() prepends a dummy " "
piece to non-empty text, i.e. add_space_prefix = true; BOS 1, EOS 2, UNK 0.

Errors (bad header, truncated or oversized file, bad tokenizer) print one line on stderr and exit
with status 2.
"""

import argparse
import os
import re
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402
import llama_gguf as lg  # noqa: E402

V1_MAGIC = 0x616B3432  # "ak42"
V1_HEADER = 256
MAX_DIM = 1 << 20


class ConvertError(Exception):
    pass


def _check_header(dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len, path):
    vals = dict(dim=dim, hidden_dim=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv,
                vocab_size=vocab, seq_len=seq_len)
    for k, v in vals.items():
        if not 0 < v <= MAX_DIM:
            raise ConvertError("%s: bad header: %s = %d" % (path, k, v))
    if dim % n_heads or (dim // n_heads) % 2:
        raise ConvertError("%s: bad header: dim %d / n_heads %d must give an even head size" % (path, dim, n_heads))
    if n_kv > n_heads or n_heads % n_kv:
        raise ConvertError("%s: bad header: n_heads %d is not a multiple of n_kv_heads %d" % (path, n_heads, n_kv))


def read_checkpoint(path):
    """-> (Hparams, tied, OrderedDict name -> float32 numpy [out, in])."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise ConvertError("%s: %s" % (path, e.strerror or e))
    if len(buf) < 28:
        raise ConvertError("%s: truncated: %d bytes is too short for a llama2.c header" % (path, len(buf)))
    magic, version = struct.unpack("<Ii", buf[:8])
    if magic == V1_MAGIC:
        if version != 1:
            raise ConvertError("%s: llama2.c export version %d is not supported (only 0 = legacy and 1)"
                               % (path, version))
        if len(buf) < V1_HEADER:
            raise ConvertError("%s: truncated: version 1 header needs %d bytes" % (path, V1_HEADER))
        dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", buf[8:36])
        shared = buf[36] != 0
        off = V1_HEADER
    else:
        dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", buf[:28])
        shared = vocab > 0
        vocab = abs(vocab)
        off = 28
    _check_header(dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len, path)
    hd = dim // n_heads
    kv_dim = n_kv * hd
    L = n_layers
    lay = {
        "emb": (vocab, dim), "rms_att": (L, dim), "wq": (L, dim, dim), "wk": (L, kv_dim, dim),
        "wv": (L, kv_dim, dim), "wo": (L, dim, dim), "rms_ffn": (L, dim), "w1": (L, hidden, dim),
        "w2": (L, dim, hidden), "w3": (L, hidden, dim), "rms_final": (dim,),
        "freq_real": (seq_len, hd // 2), "freq_imag": (seq_len, hd // 2), "wcls": (vocab, dim),
    }
    if magic == V1_MAGIC:
        order = ["rms_att", "rms_ffn", "rms_final", "emb", "wq", "wk", "wv", "wo", "w1", "w2", "w3"]
    else:
        order = ["emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final",
                 "freq_real", "freq_imag"]
    if not shared:
        order.append("wcls")
    need = off + 4 * sum(int(np.prod(lay[k], dtype=np.int64)) for k in order)
    if len(buf) < need:
        raise ConvertError("%s: truncated: header (dim %d, hidden %d, %d layers, %d heads, %d kv heads, vocab %d, "
                           "seq_len %d, %s classifier) needs %d bytes, file has %d"
                           % (path, dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len,
                              "shared" if shared else "separate", need, len(buf)))
    if len(buf) > need:
        raise ConvertError("%s: %d bytes after the last weight (file %d bytes, expected %d): wrong header or "
                           "format" % (path, len(buf) - need, len(buf), need))
    arr = {}
    for k in order:
        n = int(np.prod(lay[k], dtype=np.int64))
        arr[k] = np.frombuffer(buf, dtype="<f4", count=n, offset=off).reshape(lay[k])
        off += 4 * n
    for k, a in arr.items():
        if not np.isfinite(a).all():
            raise ConvertError("%s: %s holds non-finite values" % (path, k))
    hp = lg.Hparams(vocab, dim, n_layers, n_heads, n_kv, hidden, seq_len, rms_eps=1e-5, rope_base=10000.0)
    t = {"token_embd.weight": arr["emb"]}
    for i in range(L):
        p = "blk.%d." % i
        t[p + "attn_norm.weight"] = arr["rms_att"][i]
        t[p + "attn_q.weight"] = arr["wq"][i]
        t[p + "attn_k.weight"] = arr["wk"][i]
        t[p + "attn_v.weight"] = arr["wv"][i]
        t[p + "attn_output.weight"] = arr["wo"][i]
        t[p + "ffn_norm.weight"] = arr["rms_ffn"][i]
        t[p + "ffn_gate.weight"] = arr["w1"][i]
        t[p + "ffn_up.weight"] = arr["w3"][i]
        t[p + "ffn_down.weight"] = arr["w2"][i]
    t["output_norm.weight"] = arr["rms_final"]
    if not shared:
        t["output.weight"] = arr["wcls"]
    return hp, shared, t


_BYTE_RE = re.compile(rb"^<0x[0-9A-F]{2}>$")


def read_tokenizer(path, n_vocab):
    """-> (tokens as str/bytes, scores, types) in SentencePiece form."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise ConvertError("%s: %s" % (path, e.strerror or e))
    if len(buf) < 4:
        raise ConvertError("%s: truncated tokenizer (no header)" % path)
    (max_len,) = struct.unpack("<i", buf[:4])
    if not 0 < max_len <= 1 << 16:
        raise ConvertError("%s: bad tokenizer header: max_token_length %d" % (path, max_len))
    pos, tokens, scores, types = 4, [], [], []
    for i in range(n_vocab):
        if pos + 8 > len(buf):
            raise ConvertError("%s: truncated tokenizer: %d of %d tokens" % (path, i, n_vocab))
        score, n = struct.unpack("<fi", buf[pos:pos + 8])
        pos += 8
        if not 0 <= n <= max_len or pos + n > len(buf):
            raise ConvertError("%s: token %d: bad length %d (max_token_length %d, %d bytes left)"
                               % (path, i, n, max_len, len(buf) - pos))
        if not np.isfinite(score):
            raise ConvertError("%s: token %d has a non-finite score" % (path, i))
        b = buf[pos:pos + n]
        pos += n
        if i == 1 and b.strip() == b"<s>":
            b, tt = b"<s>", lg.TOKEN_CONTROL
        elif i == 2 and b.strip() == b"</s>":
            b, tt = b"</s>", lg.TOKEN_CONTROL
        elif i == 0 and b == b"<unk>":
            tt = lg.TOKEN_UNKNOWN
        elif _BYTE_RE.match(b):
            tt = lg.TOKEN_BYTE
        else:
            b, tt = b.replace(b" ", "\u2581".encode()), lg.TOKEN_NORMAL
        try:
            tok = b.decode("utf-8")
        except UnicodeDecodeError:
            tok = b  # written as raw bytes
        tokens.append(tok)
        scores.append(float(score))
        types.append(tt)
    if pos != len(buf):
        raise ConvertError("%s: %d bytes after %d tokens: the tokenizer does not match the model's vocab_size"
                           % (path, len(buf) - pos, n_vocab))
    seen = {}
    for i, tok in enumerate(tokens):
        if tok in seen:
            raise ConvertError("%s: tokens %d and %d are both %r" % (path, seen[tok], i, tok))
        seen[tok] = i
    return tokens, scores, types


def build_writer(hp, tied, tensors, tok, wtype, name):
    w = gguf.GGUFWriter()
    lg.add_hparams(w, hp, name=name, file_type=lg.FILE_TYPE[wtype])
    tokens, scores, types = tok
    lg.add_spm_tokenizer(w, tokens, scores, types, bos=1, eos=2, unk=0, add_bos=True, add_eos=False,
                         add_space_prefix=True)
    for n, shape in hp.shapes(tied):
        w.add_tensor(n, tensors[n], lg.tensor_type_for(n, shape, wtype))
    return w


def convert(args):
    hp, tied, tensors = read_checkpoint(args.model)
    tok = read_tokenizer(args.tokenizer, hp.n_vocab)
    name = args.name or os.path.splitext(os.path.basename(args.model))[0]
    w = build_writer(hp, tied, tensors, tok, lg.TYPE_BY_NAME[args.type], name)
    try:
        n = w.write(args.output)
    except OSError as e:
        raise ConvertError("%s: %s" % (args.output, e.strerror or e))
    if not args.quiet:
        print("%s: llama dim %d, %d layers, %d/%d heads, ffn %d, vocab %d, ctx %d, %s output, %s, %d bytes"
              % (args.output, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv, hp.n_ff, hp.n_vocab, hp.n_ctx,
                 "tied" if tied else "separate", args.type, n))


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Convert a llama2.c model.bin + tokenizer.bin to a llama GGUF.")
    ap.add_argument("model", help="llama2.c checkpoint (legacy or version 1 export)")
    ap.add_argument("--tokenizer", required=True, help="llama2.c tokenizer.bin (e.g. tok512.bin)")
    ap.add_argument("-o", "--output", required=True, help="output .gguf")
    ap.add_argument("--type", choices=sorted(lg.TYPE_BY_NAME), default="f32",
                    help="type of the 2-D weights (norms stay f32); default f32")
    ap.add_argument("--name", help="general.name (default: the model file's base name)")
    ap.add_argument("-q", "--quiet", action="store_true")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except (ConvertError, gguf.GGUFError) as e:
        print("llama2c.py: error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
