#!/usr/bin/python3
"""Convert a Hugging Face LlamaForCausalLM checkpoint directory to a llama GGUF (numpy only).

    hf_llama.py MODEL_DIR -o OUT.gguf [--type f32|f16] [--name NAME] [--pre gpt-2]

MODEL_DIR holds:
  config.json       hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
                    num_key_value_heads, max_position_embeddings, rms_norm_eps, rope_theta,
                    vocab_size, tie_word_embeddings, bos/eos_token_id. rope_scaling, attention or
                    mlp biases and a head_dim other than hidden_size / num_attention_heads are
                    rejected (the runtime does not implement them).
  model.safetensors, or shards listed in model.safetensors.index.json ("weight_map"); F32, F16
                    or BF16 (read with numpy memory maps, one tensor at a time).
  a tokenizer:      tokenizer.model (SentencePiece protobuf; read without the sentencepiece
                    package) if present, else tokenizer.json:
                    - BPE with byte_fallback / "<0xXX>" tokens and U+2581 spaces (Llama-1/2,
                      TinyLlama style) -> tokenizer.ggml.model "llama"; scores from the merge
                      ranks (the token made by merge r scores -r), single characters score 0,
                      tokens no merge makes score below every merge;
                    - byte-level BPE (pre_tokenizer ByteLevel, GPT-2 regex) -> "gpt2" with
                      tokenizer.ggml.merges and tokenizer.ggml.pre "gpt-2". Another
                      pre-tokenizer is an error unless --pre names the llama.cpp pre-tokenizer
                      to record (its regex must then be what the file's Split does).
                    tokenizer_config.json (optional) gives add_bos_token / add_eos_token.
Tensor names: model.embed_tokens -> token_embd, model.layers.N.{input_layernorm -> attn_norm,
self_attn.{q,k,v,o}_proj -> attn_{q,k,v,output}, post_attention_layernorm -> ffn_norm,
mlp.{gate,up,down}_proj -> ffn_{gate,up,down}}, model.norm -> output_norm, lm_head -> output
(dropped when tie_word_embeddings). q_proj and k_proj rows are permuted exactly as llama.cpp's
convert_hf_to_gguf.py does (reshape (n_head, 2, hd/2, in), swap axes 1 and 2), which turns HF's
rotate_half RoPE into the GGUF adjacent-pair (NORM) RoPE. With --type f16 the 2-D weights are F16
and the norms F32. Output is streamed: memory use is about one tensor.

Errors print one line on stderr and exit with status 2.
"""

import argparse
import json
import os
import re
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402
import llama_gguf as lg  # noqa: E402


class ConvertError(Exception):
    pass


# -------------------------------------------------------------------------------------------------
# safetensors (memory-mapped)

_ST = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8"}


class SafeTensors:
    def __init__(self, path):
        self.path = path
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise ConvertError("%s: too short for a safetensors file" % path)
                (n,) = struct.unpack("<Q", head)
                if n > size - 8 or n > 1 << 30:
                    raise ConvertError("%s: safetensors header length %d exceeds the file" % (path, n))
                hj = f.read(n)
        except OSError as e:
            raise ConvertError("%s: %s" % (path, e.strerror or e))
        try:
            header = json.loads(hj.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ConvertError("%s: bad safetensors header (%s)" % (path, e))
        if not isinstance(header, dict):
            raise ConvertError("%s: bad safetensors header" % path)
        self.base = 8 + n
        self.size = size
        self.info = {k: v for k, v in header.items() if k != "__metadata__"}
        self.mm = np.memmap(path, dtype=np.uint8, mode="r") if size > self.base else np.zeros(0, np.uint8)

    def keys(self):
        return self.info.keys()

    def shape(self, name):
        return tuple(int(d) for d in self.info[name]["shape"])

    def get(self, name):
        """-> float32 numpy array (BF16/F16/F64 converted)."""
        inf = self.info[name]
        dt, shape = inf.get("dtype"), tuple(int(d) for d in inf.get("shape", []))
        b, e = inf.get("data_offsets", (None, None))
        if dt not in _ST:
            raise ConvertError("%s: tensor %s has unsupported dtype %s" % (self.path, name, dt))
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        item = np.dtype(_ST[dt]).itemsize
        if b is None or not 0 <= b <= e <= self.size - self.base or e - b != count * item:
            raise ConvertError("%s: tensor %s has bad data_offsets %s for %s %s" % (self.path, name, (b, e), dt,
                                                                                      list(shape)))
        raw = self.mm[self.base + b:self.base + e].view(_ST[dt])
        if dt == "BF16":
            a = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            a = raw.astype(np.float32)
        return a.reshape(shape)


class Checkpoint:
    """name -> (SafeTensors file) over one file or an index of shards."""

    def __init__(self, d):
        idx = os.path.join(d, "model.safetensors.index.json")
        single = os.path.join(d, "model.safetensors")
        self.where = {}
        if os.path.exists(idx):
            try:
                with open(idx) as f:
                    wm = json.load(f)["weight_map"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ConvertError("%s: bad index (%s)" % (idx, e))
            files = {}
            for name, fn in wm.items():
                if os.path.basename(fn) != fn:
                    raise ConvertError("%s: shard name %r is not a plain file name" % (idx, fn))
                if fn not in files:
                    files[fn] = SafeTensors(os.path.join(d, fn))
                if name not in files[fn].info:
                    raise ConvertError("%s: index puts %s in %s, which does not hold it" % (idx, name, fn))
                self.where[name] = files[fn]
        elif os.path.exists(single):
            st = SafeTensors(single)
            self.where = {k: st for k in st.keys()}
        else:
            raise ConvertError("%s: no model.safetensors or model.safetensors.index.json" % d)

    def __contains__(self, name):
        return name in self.where

    def shape(self, name):
        return self.where[name].shape(name)

    def get(self, name):
        return self.where[name].get(name)


# -------------------------------------------------------------------------------------------------
# tokenizers


def _pb_varint(buf, p):
    v, s = 0, 0
    while True:
        if p >= len(buf):
            raise ConvertError("tokenizer.model: truncated varint")
        c = buf[p]
        p += 1
        v |= (c & 0x7F) << s
        s += 7
        if not c & 0x80:
            return v, p
        if s > 63:
            raise ConvertError("tokenizer.model: bad varint")


def _pb_fields(buf):
    """Yield (field number, wire type, value) of one protobuf message (value: int or bytes)."""
    p = 0
    while p < len(buf):
        key, p = _pb_varint(buf, p)
        fn, wt = key >> 3, key & 7
        if wt == 0:
            v, p = _pb_varint(buf, p)
        elif wt == 1:
            v, p = buf[p:p + 8], p + 8
        elif wt == 2:
            n, p = _pb_varint(buf, p)
            if p + n > len(buf):
                raise ConvertError("tokenizer.model: truncated field")
            v, p = buf[p:p + n], p + n
        elif wt == 5:
            v, p = buf[p:p + 4], p + 4
        else:
            raise ConvertError("tokenizer.model: unsupported protobuf wire type %d" % wt)
        yield fn, wt, v


def read_sentencepiece_model(path):
    """SentencePiece ModelProto: field 1 = repeated SentencePiece {1 piece, 2 score, 3 type};
    field 3 = NormalizerSpec (field 3 add_dummy_prefix, default true);
    field 2 = TrainerSpec (field 3 model_type: 1 unigram, 2 bpe; unk/bos/eos/pad ids 40..43)."""
    with open(path, "rb") as f:
        buf = f.read()
    tokens, scores, types = [], [], []
    add_prefix = True
    ids = {"unk": 0, "bos": 1, "eos": 2}  # SentencePiece TrainerSpec defaults
    for fn, wt, v in _pb_fields(buf):
        if fn == 1 and wt == 2:
            piece, score, typ = b"", 0.0, 1
            for f2, w2, v2 in _pb_fields(v):
                if f2 == 1 and w2 == 2:
                    piece = bytes(v2)
                elif f2 == 2 and w2 == 5:
                    (score,) = struct.unpack("<f", v2)
                elif f2 == 3 and w2 == 0:
                    typ = v2
            tokens.append(piece.decode("utf-8", "replace"))
            scores.append(score)
            types.append(typ if 1 <= typ <= 6 else 1)
        elif fn == 3 and wt == 2:
            for f2, w2, v2 in _pb_fields(v):
                if f2 == 3 and w2 == 0:
                    add_prefix = bool(v2)
        elif fn == 2 and wt == 2:
            for f2, w2, v2 in _pb_fields(v):
                if w2 == 0 and f2 in (40, 41, 42, 43):
                    ids[{40: "unk", 41: "bos", 42: "eos", 43: "pad"}[f2]] = v2 if v2 < 2**31 else -1
    if not tokens:
        raise ConvertError("%s: no pieces (not a SentencePiece model?)" % path)
    return dict(kind="llama", tokens=tokens, scores=scores, types=types, add_space_prefix=add_prefix, ids=ids)


_BYTE_TOK = re.compile(r"^<0x[0-9A-F]{2}>$")


def _norm_merge(m):
    if isinstance(m, str):
        parts = m.split(" ")
        if len(parts) != 2:
            raise ConvertError("tokenizer.json: merge %r is not 'left right'" % m)
        return parts[0], parts[1]
    if isinstance(m, (list, tuple)) and len(m) == 2:
        return m[0], m[1]
    raise ConvertError("tokenizer.json: bad merge %r" % (m,))


def _walk(node, typ):
    """All sub-dicts of a tokenizer.json component (Sequence-aware) with "type" == typ."""
    if node is None:
        return []
    if isinstance(node, list):
        return [x for n in node for x in _walk(n, typ)]
    if not isinstance(node, dict):
        return []
    out = [node] if node.get("type") == typ else []
    for k in ("normalizers", "pretokenizers", "decoders"):
        out += _walk(node.get(k), typ)
    return out


def read_tokenizer_json(path, pre_override=None):
    try:
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError("%s: %s" % (path, e))
    model = tj.get("model") or {}
    if model.get("type") != "BPE":
        raise ConvertError("%s: model type %r is not supported (BPE only)" % (path, model.get("type")))
    vocab = model.get("vocab") or {}
    n = max(list(vocab.values()) + [a["id"] for a in tj.get("added_tokens", [])] + [-1]) + 1
    tokens = [None] * n
    for t, i in vocab.items():
        tokens[i] = t
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    for i, a in added.items():
        tokens[i] = a["content"]
    for i, t in enumerate(tokens):
        if t is None:
            tokens[i] = "[PAD%d]" % i
    merges = [_norm_merge(m) for m in model.get("merges", [])]
    unk_tok = model.get("unk_token")
    unk = vocab.get(unk_tok) if unk_tok is not None else None
    byte_level = bool(_walk(tj.get("pre_tokenizer"), "ByteLevel"))
    spm_like = model.get("byte_fallback") or any(_BYTE_TOK.match(t) for t in tokens[:300]) or \
        any("\u2581" in t for t in tokens[:2000])
    if byte_level:
        pre = pre_override
        plain = tj["pre_tokenizer"].get("type") == "ByteLevel" and tj["pre_tokenizer"].get("use_regex", True)
        if pre is None:
            if not plain:
                raise ConvertError("%s: the pre-tokenizer is not plain GPT-2 ByteLevel; pass --pre NAME to record "
                                   "the llama.cpp pre-tokenizer whose regex it uses" % path)
            pre = "gpt-2"
        types = []
        for i, t in enumerate(tokens):
            a = added.get(i)
            types.append(lg.TOKEN_CONTROL if a and a.get("special") else lg.TOKEN_USER if a else lg.TOKEN_NORMAL)
        return dict(kind="gpt2", tokens=tokens, types=types, merges=["%s %s" % m for m in merges], pre=pre,
                    ids={"unk": unk} if unk is not None else {})
    if not spm_like:
        raise ConvertError("%s: BPE without ByteLevel pre-tokenizer or SentencePiece-style pieces is not supported"
                           % path)
    # SentencePiece-style: scores from merge ranks
    index = {t: i for i, t in enumerate(tokens)}
    scores = [None] * n
    for r, (a, b) in enumerate(merges):
        i = index.get(a + b)
        if i is not None and scores[i] is None:
            scores[i] = -float(r + 1)
    nm = len(merges)
    types = []
    for i, t in enumerate(tokens):
        a = added.get(i)
        if i == unk:
            tt = lg.TOKEN_UNKNOWN
        elif a is not None and a.get("special"):
            tt = lg.TOKEN_CONTROL
        elif a is not None:
            tt = lg.TOKEN_USER
        elif _BYTE_TOK.match(t):
            tt = lg.TOKEN_BYTE
        else:
            tt = lg.TOKEN_NORMAL
        types.append(tt)
        if scores[i] is None:
            scores[i] = 0.0 if (tt != lg.TOKEN_NORMAL or len(t) == 1) else -float(nm + 1 + i)
    prefix = bool(_walk(tj.get("normalizer"), "Prepend")) or any(
        m.get("add_prefix_space", False) or m.get("prepend_scheme") in ("always", "first")
        for m in _walk(tj.get("pre_tokenizer"), "Metaspace"))
    return dict(kind="llama", tokens=tokens, scores=scores, types=types, add_space_prefix=prefix,
                ids={"unk": unk} if unk is not None else {})


def load_tokenizer(d, n_vocab, cfg, pre_override=None):
    spm_path, tj_path = os.path.join(d, "tokenizer.model"), os.path.join(d, "tokenizer.json")
    if os.path.exists(spm_path):
        tok = read_sentencepiece_model(spm_path)
    elif os.path.exists(tj_path):
        tok = read_tokenizer_json(tj_path, pre_override)
    else:
        raise ConvertError("%s: no tokenizer.model or tokenizer.json" % d)
    nt = len(tok["tokens"])
    if nt > n_vocab:
        raise ConvertError("tokenizer has %d tokens but the model's vocab is %d" % (nt, n_vocab))
    for i in range(nt, n_vocab):  # padded embedding rows (as llama.cpp: unused [PADn] tokens)
        tok["tokens"].append("[PAD%d]" % i)
        tok["types"].append(lg.TOKEN_UNUSED)
        if "scores" in tok:
            tok["scores"].append(-1000.0)
    tc_path = os.path.join(d, "tokenizer_config.json")
    tc = {}
    if os.path.exists(tc_path):
        try:
            with open(tc_path) as f:
                tc = json.load(f)
        except (OSError, ValueError) as e:
            raise ConvertError("%s: %s" % (tc_path, e))
    ids = tok["ids"]
    for k in ("bos", "eos", "pad"):
        v = cfg.get("%s_token_id" % k)
        if isinstance(v, list):
            v = v[0] if v else None
        if isinstance(v, int) and 0 <= v < n_vocab:
            ids[k] = v
    for k in list(ids):
        if ids[k] is None or not 0 <= ids[k] < n_vocab:
            del ids[k]
    tok["add_bos"] = bool(tc.get("add_bos_token", tok["kind"] == "llama"))
    tok["add_eos"] = bool(tc.get("add_eos_token", False))
    seen = {}
    for i, t in enumerate(tok["tokens"]):
        if t in seen:
            raise ConvertError("tokenizer: tokens %d and %d are both %r" % (seen[t], i, t))
        seen[t] = i
    return tok


def add_tokenizer(w, tok):
    ids = tok["ids"]
    if tok["kind"] == "llama":
        lg.add_spm_tokenizer(w, tok["tokens"], tok["scores"], tok["types"], bos=ids.get("bos"), eos=ids.get("eos"),
                             unk=ids.get("unk"), pad=ids.get("pad"),
                             add_bos=tok["add_bos"] and "bos" in ids, add_eos=tok["add_eos"] and "eos" in ids,
                             add_space_prefix=tok["add_space_prefix"])
    else:
        lg.add_bpe_tokenizer(w, tok["tokens"], tok["merges"], tok["types"], bos=ids.get("bos"), eos=ids.get("eos"),
                             unk=ids.get("unk"), pad=ids.get("pad"), pre=tok["pre"],
                             add_bos=tok["add_bos"] and "bos" in ids)
        if tok["add_eos"] and "eos" in ids:
            w.add_bool("tokenizer.ggml.add_eos_token", True)


# -------------------------------------------------------------------------------------------------
# model


def read_config(d):
    p = os.path.join(d, "config.json")
    try:
        with open(p) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError("%s: %s" % (p, e))
    archs = cfg.get("architectures") or ["LlamaForCausalLM"]
    if cfg.get("model_type", "llama") != "llama" or "LlamaForCausalLM" not in archs:
        raise ConvertError("%s: model_type %r / architectures %r: only LlamaForCausalLM is supported"
                           % (p, cfg.get("model_type"), archs))
    if cfg.get("rope_scaling"):
        raise ConvertError("%s: rope_scaling %r is not supported" % (p, cfg["rope_scaling"]))
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        raise ConvertError("%s: attention/mlp biases are not supported" % p)
    if cfg.get("hidden_act", "silu") != "silu":
        raise ConvertError("%s: hidden_act %r is not supported (silu only)" % (p, cfg.get("hidden_act")))
    try:
        n_head = int(cfg["num_attention_heads"])
        hp = lg.Hparams(n_vocab=int(cfg["vocab_size"]), n_embd=int(cfg["hidden_size"]),
                        n_layer=int(cfg["num_hidden_layers"]), n_head=n_head,
                        n_head_kv=int(cfg.get("num_key_value_heads") or n_head),
                        n_ff=int(cfg["intermediate_size"]), n_ctx=int(cfg.get("max_position_embeddings", 2048)),
                        rms_eps=float(cfg.get("rms_norm_eps", 1e-6)), rope_base=float(cfg.get("rope_theta", 10000.0)))
    except (KeyError, TypeError, ValueError) as e:
        raise ConvertError("%s: missing or bad field %s" % (p, e))
    hp.validate(ConvertError)
    if cfg.get("head_dim") not in (None, hp.head_dim):
        raise ConvertError("%s: head_dim %r != hidden_size / num_attention_heads (%d) is not supported"
                           % (p, cfg["head_dim"], hp.head_dim))
    return cfg, hp


HF_NAMES = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
            "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
            "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def hf_name(gname):
    if gname == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gname == "output_norm.weight":
        return "model.norm.weight"
    if gname == "output.weight":
        return "lm_head.weight"
    m = re.match(r"^blk\.(\d+)\.(\w+)\.weight$", gname)
    return "model.layers.%s.%s.weight" % (m.group(1), HF_NAMES[m.group(2)])


def convert(args):
    d = args.model_dir
    cfg, hp = read_config(d)
    ck = Checkpoint(d)
    tied = bool(cfg.get("tie_word_embeddings", False)) or "lm_head.weight" not in ck
    tok = load_tokenizer(d, hp.n_vocab, cfg, args.pre)
    wtype = lg.TYPE_BY_NAME[args.type]
    plan = hp.shapes(tied)
    for gname, shape in plan:
        hn = hf_name(gname)
        if hn not in ck:
            raise ConvertError("checkpoint has no tensor %s (for %s)" % (hn, gname))
        if ck.shape(hn) != tuple(shape):
            raise ConvertError("tensor %s has shape %s, config.json implies %s" % (hn, list(ck.shape(hn)), list(shape)))
    known = {hf_name(g) for g, _ in hp.shapes(False)}
    extra = [k for k in ck.where if k not in known and not k.endswith("rotary_emb.inv_freq")]
    if extra:
        raise ConvertError("checkpoint has tensors this converter does not map: %s" % ", ".join(sorted(extra)[:5]))
    part = args.output + ".part"
    w = lg.StreamingWriter(part)
    lg.add_hparams(w, hp, name=args.name or os.path.basename(os.path.normpath(d)), file_type=lg.FILE_TYPE[wtype])
    add_tokenizer(w, tok)
    for gname, shape in plan:
        w.declare_tensor(gname, shape, lg.tensor_type_for(gname, shape, wtype))
    try:
        w.begin()
        for gname, shape in plan:
            a = ck.get(hf_name(gname))
            if gname.endswith("attn_q.weight"):
                a = lg.hf_permute(a, hp.n_head)
            elif gname.endswith("attn_k.weight"):
                a = lg.hf_permute(a, hp.n_head, hp.n_head_kv)
            gt = lg.tensor_type_for(gname, shape, wtype)
            if gt == gguf.GGML_F16 and np.isfinite(a).all() and np.abs(a).max(initial=0) > 65504:
                raise ConvertError("tensor %s exceeds the f16 range; use --type f32" % gname)
            w.write_tensor_data(gname, lg.to_raw(a, gt))
        size = w.finish()
        os.replace(part, args.output)
    except OSError as e:
        raise ConvertError("%s: %s" % (args.output, e.strerror or e))
    finally:
        if w._f is not None and not w._f.closed:
            w._f.close()
        if os.path.exists(part):
            os.remove(part)
    if not args.quiet:
        print("%s: llama dim %d, %d layers, %d/%d heads, ffn %d, vocab %d (%s tokenizer), ctx %d, %s output, %s, "
              "%d bytes" % (args.output, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv, hp.n_ff, hp.n_vocab,
                            tok["kind"], hp.n_ctx, "tied" if tied else "separate", args.type, size))


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Convert a Hugging Face LlamaForCausalLM directory to a llama GGUF.")
    ap.add_argument("model_dir")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--type", choices=sorted(lg.TYPE_BY_NAME), default="f32",
                    help="type of the 2-D weights (norms stay f32); default f32")
    ap.add_argument("--name", help="general.name (default: the directory name)")
    ap.add_argument("--pre", help="tokenizer.ggml.pre to record for a byte-level BPE tokenizer whose "
                                  "pre-tokenizer is not plain GPT-2")
    ap.add_argument("-q", "--quiet", action="store_true")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except (ConvertError, gguf.GGUFError) as e:
        print("hf_llama.py: error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
