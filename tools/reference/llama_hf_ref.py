"""Hugging Face-style llama pieces for testing tools/convert/hf_llama.py (no transformers needed).

- hf_forward(sd, cfg, tokens): LlamaForCausalLM's forward in float64 on the UNPERMUTED HF state
  dict, with HF's rotate_half RoPE (pair i = dims i and i + hd/2, inv_freq = base^(-2i/hd)).
  Comparing it with tools/reference/llama_ref.py on the converted GGUF (adjacent-pair RoPE on
  permuted q/k) checks the converter's permutation.
- random_state_dict(cfg, seed), write_hf_dir(...): a tiny random checkpoint directory
  (config.json, model.safetensors or index + shards, F32/F16/BF16, tokenizer files).
- Tokenizer file builders: spm_tokenizer_json (SentencePiece-style BPE with byte fallback),
  gpt2_tokenizer_json (byte-level BPE), sentencepiece_model (tokenizer.model protobuf).
"""

import json
import math
import os
import struct

import numpy as np
import torch

from llama_tok import bytes_to_unicode


def hf_config(vocab=64, hidden=32, layers=2, heads=4, kv_heads=2, ffn=64, ctx=64, eps=1e-5, theta=10000.0,
              tie=False, bos=1, eos=2):
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab,
            "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "intermediate_size": ffn, "max_position_embeddings": ctx,
            "rms_norm_eps": eps, "rope_theta": theta, "tie_word_embeddings": tie, "hidden_act": "silu",
            "bos_token_id": bos, "eos_token_id": eos, "torch_dtype": "float32"}


def random_state_dict(cfg, seed):
    rng = np.random.default_rng(seed)
    e, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = e // cfg["num_attention_heads"]
    kvd = cfg["num_key_value_heads"] * hd

    def lin(o, i):
        return (rng.standard_normal((o, i)) / math.sqrt(i)).astype(np.float32)

    def norm():
        return (1.0 + 0.1 * rng.standard_normal(e)).astype(np.float32)

    sd = {"model.embed_tokens.weight": rng.standard_normal((v, e)).astype(np.float32)}
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        sd[p + "input_layernorm.weight"] = norm()
        sd[p + "self_attn.q_proj.weight"] = lin(e, e)
        sd[p + "self_attn.k_proj.weight"] = lin(kvd, e)
        sd[p + "self_attn.v_proj.weight"] = lin(kvd, e)
        sd[p + "self_attn.o_proj.weight"] = lin(e, e)
        sd[p + "post_attention_layernorm.weight"] = norm()
        sd[p + "mlp.gate_proj.weight"] = lin(f, e)
        sd[p + "mlp.up_proj.weight"] = lin(f, e)
        sd[p + "mlp.down_proj.weight"] = lin(e, f)
    sd["model.norm.weight"] = norm()
    if not cfg.get("tie_word_embeddings"):
        sd["lm_head.weight"] = lin(v, e)
    return sd


def bf16_round(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    bits = ((u + (((u >> 16) & 1) + 0x7FFF)) >> 16).astype(np.uint32)
    return (bits << 16).view(np.float32)


def save_safetensors(path, tensors, dtype="F32"):
    header, blobs, off = {}, [], 0
    for k, a in tensors.items():
        a = np.asarray(a, dtype=np.float32)
        if dtype == "F32":
            raw = a.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            raw = (bf16_round(a).view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[k] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    hj = json.dumps(header).encode()
    hj += b" " * ((-len(hj)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))


def stored_values(sd, dtype):
    """What the checkpoint holds after rounding to dtype (as float32)."""
    if dtype == "F32":
        return {k: np.asarray(v, np.float32) for k, v in sd.items()}
    if dtype == "F16":
        return {k: np.asarray(v, np.float32).astype(np.float16).astype(np.float32) for k, v in sd.items()}
    return {k: bf16_round(v) for k, v in sd.items()}


def write_hf_dir(d, cfg, sd, dtype="F32", shards=1, tokenizer_json=None, tokenizer_model=None,
                 tokenizer_config=None):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    names = list(sd)
    if shards == 1:
        save_safetensors(os.path.join(d, "model.safetensors"), sd, dtype)
    else:
        wm = {}
        for s in range(shards):
            part = names[s::shards]
            fn = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
            save_safetensors(os.path.join(d, fn), {k: sd[k] for k in part}, dtype)
            wm.update({k: fn for k in part})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": wm}, f, indent=1)
    if tokenizer_json is not None:
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer_json, f, ensure_ascii=False)
    if tokenizer_model is not None:
        with open(os.path.join(d, "tokenizer.model"), "wb") as f:
            f.write(tokenizer_model)
    if tokenizer_config is not None:
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(tokenizer_config, f)


# -------------------------------------------------------------------------------------------------
# HF forward


def _rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


@torch.no_grad()
def hf_forward(sd, cfg, tokens):
    """float64 logits [T, vocab] of LlamaForCausalLM (eager attention, no cache)."""
    w = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in sd.items()}
    e, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    hd = e // H
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    ids = torch.tensor(tokens, dtype=torch.long)
    T = len(tokens)
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    fr = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat([fr, fr], dim=-1)
    cos, sin = emb.cos()[None], emb.sin()[None]  # [1, T, hd]

    def rms(x, g):
        return g * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    x = w["model.embed_tokens.weight"][ids]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        h = rms(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, H, hd).transpose(0, 1)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, KV, hd).transpose(0, 1)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, KV, hd).transpose(0, 1)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1)
        o = (a @ v).transpose(0, 1).reshape(T, e)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        x = x + (torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T) * (h @ w[p + "mlp.up_proj.weight"].T)) \
            @ w[p + "mlp.down_proj.weight"].T
    x = rms(x, w["model.norm.weight"])
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


# -------------------------------------------------------------------------------------------------
# tokenizer files


def spm_tokenizer_json(tokens, scores, types, unk=0, add_prefix=True):
    """HF tokenizer.json for a SentencePiece BPE vocab (as transformers' LlamaConverter writes it):
    merges for every multi-character normal token, ordered by the token's score."""
    index = {t: i for i, t in enumerate(tokens)}
    order = sorted((i for i, t in enumerate(tokens) if types[i] == 1 and len(t) > 1), key=lambda i: (-scores[i], i))
    merges = []
    for i in order:
        t = tokens[i]
        for c in range(1, len(t)):
            if t[:c] in index and t[c:] in index:
                merges.append("%s %s" % (t[:c], t[c:]))
                break
    specials = [i for i, tt in enumerate(types) if tt in (2, 3)]
    normalizer = {"type": "Sequence", "normalizers": ([{"type": "Prepend", "prepend": "\u2581"}] if add_prefix else [])
                  + [{"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    return {"version": "1.0", "added_tokens": [{"id": i, "content": tokens[i], "special": True} for i in specials],
            "normalizer": normalizer, "pre_tokenizer": None,
            "model": {"type": "BPE", "unk_token": tokens[unk], "byte_fallback": True, "fuse_unk": True,
                      "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges}}


GPT2_MERGES = [("\u0120", "t"), ("h", "e"), ("\u0120t", "he"), ("\u0120", "a"), ("i", "n"), ("e", "r"), ("o", "n"),
               ("\u0120", "c"), ("a", "t"), ("\u0120c", "at"), ("l", "l"), ("e", "ll"), ("h", "ell"), ("hell", "o"),
               ("\u0120", "hello"), ("\u0120", "w"), ("o", "r"), ("\u0120w", "or")]


def gpt2_tokenizer_json(merges=GPT2_MERGES, specials=("<|endoftext|>",), merges_as_lists=False):
    """Byte-level BPE: 256 byte characters in GPT-2 order, one token per merge, then specials."""
    b2u = bytes_to_unicode()
    vocab = {}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    added = []
    for s in specials:
        added.append({"id": len(vocab), "content": s, "special": True})
        vocab[s] = len(vocab)
    ms = [[a, b] for a, b in merges] if merges_as_lists else ["%s %s" % m for m in merges]
    return {"version": "1.0", "added_tokens": added, "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": vocab, "merges": ms}}


def _varint(v):
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        out.append(c | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _field(fn, wt, payload):
    key = _varint(fn << 3 | wt)
    if wt == 2:
        return key + _varint(len(payload)) + payload
    return key + payload


def sentencepiece_model(tokens, scores, types, add_dummy_prefix=True, unk=0, bos=1, eos=2):
    """A minimal SentencePiece ModelProto (pieces, trainer ids, normalizer add_dummy_prefix)."""
    out = bytearray()
    for t, s, ty in zip(tokens, scores, types):
        piece = _field(1, 2, t.encode("utf-8")) + _field(2, 5, struct.pack("<f", s)) + _field(3, 0, _varint(ty))
        out += _field(1, 2, piece)
    trainer = _field(3, 0, _varint(2)) + _field(40, 0, _varint(unk)) + _field(41, 0, _varint(bos)) + \
        _field(42, 0, _varint(eos))
    out += _field(2, 2, trainer)
    out += _field(3, 2, _field(1, 2, b"identity") + _field(3, 0, _varint(1 if add_dummy_prefix else 0)))
    return bytes(out)
