#!/usr/bin/python3
"""Independent PyTorch forward of a llama-architecture GGUF (the oracle for Sparrow's C runtime).

    llama_ref.py MODEL.gguf [-p PROMPT] [-n 60] [--ids] [--f32]

Reads the GGUF with tools/convert/gguf.py (F32/F16/BF16 tensors; Q8_0/Q4_0 dequantized) and
computes, in float64 by default:
  x = token_embd[tokens]
  per block: h = x + attn_output(attn(rope(q), rope(k), v)) on rmsnorm(x) * attn_norm
             x = h + ffn_down(silu(ffn_gate(n)) * ffn_up(n)),  n = rmsnorm(h) * ffn_norm
  logits = output(rmsnorm(x) * output_norm)   (output absent: tied to token_embd)
rmsnorm(x) = x / sqrt(mean(x^2) + eps). RoPE is llama.cpp's NORM mode: within each head, the
adjacent pairs (2i, 2i+1), i < n_rot/2, rotate by theta = pos * base^(-2i/n_rot); dims >= n_rot
pass through. Attention is causal with GQA (query head h reads kv head h / (n_head/n_head_kv)),
scores scaled by 1/sqrt(head_dim). No KV cache: every step recomputes the whole prefix (the
models this is meant for are small).

Generation is greedy (argmax, ties -> lowest id), starting from BOS (+ the prompt), stopping at
-n new tokens or EOS.
"""

import argparse
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "convert"))
sys.path.insert(0, HERE)
import gguf  # noqa: E402
from llama_tok import Tokenizer  # noqa: E402


class Config:
    def __init__(self, kv, tensors):
        def get(k, default=None):
            key = "llama." + k
            if key in kv:
                return kv[key]
            if default is None:
                raise ValueError("missing GGUF key %s" % key)
            return default

        if kv.get("general.architecture") != "llama":
            raise ValueError("general.architecture is %r, not 'llama'" % kv.get("general.architecture"))
        self.n_embd = int(get("embedding_length"))
        self.n_layer = int(get("block_count"))
        self.n_ff = int(get("feed_forward_length"))
        self.n_head = int(get("attention.head_count"))
        self.n_head_kv = int(get("attention.head_count_kv", self.n_head))
        self.n_ctx = int(get("context_length"))
        self.eps = float(get("attention.layer_norm_rms_epsilon"))
        self.rope_base = float(get("rope.freq_base", 10000.0))
        self.head_dim = self.n_embd // self.n_head
        self.n_rot = int(get("rope.dimension_count", self.head_dim))
        self.n_vocab = int(tensors["token_embd.weight"].ne[1])
        self.tied = "output.weight" not in tensors


class LlamaRef:
    def __init__(self, path, dtype=torch.float64):
        g = gguf.GGUFReader(path)
        self.kv = g.kv
        self.cfg = Config(g.kv, g.tensors)
        self.dtype = dtype
        self.w = {n: torch.from_numpy(g.array(n, np.float64 if dtype == torch.float64 else np.float32).copy())
                  for n in g.tensors}
        self._check_shapes()
        self.tok = Tokenizer(g.kv) if "tokenizer.ggml.model" in g.kv else None

    def _check_shapes(self):
        c = self.cfg
        hd = c.head_dim
        want = {"token_embd.weight": (c.n_vocab, c.n_embd), "output_norm.weight": (c.n_embd,)}
        for i in range(c.n_layer):
            p = "blk.%d." % i
            want.update({p + "attn_norm.weight": (c.n_embd,), p + "attn_q.weight": (c.n_head * hd, c.n_embd),
                         p + "attn_k.weight": (c.n_head_kv * hd, c.n_embd),
                         p + "attn_v.weight": (c.n_head_kv * hd, c.n_embd),
                         p + "attn_output.weight": (c.n_embd, c.n_head * hd), p + "ffn_norm.weight": (c.n_embd,),
                         p + "ffn_gate.weight": (c.n_ff, c.n_embd), p + "ffn_up.weight": (c.n_ff, c.n_embd),
                         p + "ffn_down.weight": (c.n_embd, c.n_ff)})
        if not c.tied:
            want["output.weight"] = (c.n_vocab, c.n_embd)
        for n, s in want.items():
            if n not in self.w:
                raise ValueError("missing tensor %s" % n)
            if tuple(self.w[n].shape) != s:
                raise ValueError("tensor %s has shape %s, expected %s" % (n, tuple(self.w[n].shape), s))

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.eps) * w

    def rope(self, x, pos):
        """x [T, H, hd]; rotate pairs (2i, 2i+1) of the first n_rot dims."""
        c = self.cfg
        half = c.n_rot // 2
        i = torch.arange(half, dtype=torch.float64)
        inv = c.rope_base ** (-2.0 * i / c.n_rot)
        ang = pos.to(torch.float64)[:, None] * inv[None, :]  # [T, half]
        cos, sin = torch.cos(ang).to(x.dtype)[:, None, :], torch.sin(ang).to(x.dtype)[:, None, :]
        xr = x[..., :c.n_rot].reshape(*x.shape[:-1], half, 2)
        x0, x1 = xr[..., 0], xr[..., 1]
        out = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).reshape(*x.shape[:-1], c.n_rot)
        return torch.cat([out, x[..., c.n_rot:]], dim=-1)

    @torch.no_grad()
    def forward(self, tokens, ffn_hook=None):
        """tokens: list of ids -> logits [T, n_vocab] (self.dtype).
        ffn_hook(layer, f) -> f, optional: sees (and may replace) each layer's FFN activations
        f = silu(gate) * up, [T, n_ff], before ffn_down (tools/reference/coreinfer_ref.py)."""
        c, w = self.cfg, self.w
        ids = torch.as_tensor(list(tokens), dtype=torch.long)
        if ids.numel() == 0:
            raise ValueError("empty token list")
        if int(ids.min()) < 0 or int(ids.max()) >= c.n_vocab:
            raise ValueError("token id out of range")
        T, hd = ids.numel(), c.head_dim
        pos = torch.arange(T)
        x = w["token_embd.weight"][ids]
        mask = torch.full((T, T), float("-inf"), dtype=x.dtype).triu(1)
        group = c.n_head // c.n_head_kv
        for L in range(c.n_layer):
            p = "blk.%d." % L
            n = self.rmsnorm(x, w[p + "attn_norm.weight"])
            q = (n @ w[p + "attn_q.weight"].T).view(T, c.n_head, hd)
            k = (n @ w[p + "attn_k.weight"].T).view(T, c.n_head_kv, hd)
            v = (n @ w[p + "attn_v.weight"].T).view(T, c.n_head_kv, hd)
            q, k = self.rope(q, pos), self.rope(k, pos)
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
            s = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd) + mask
            a = torch.softmax(s, dim=-1)
            o = torch.einsum("hqk,khd->qhd", a, v).reshape(T, c.n_head * hd)
            x = x + o @ w[p + "attn_output.weight"].T
            n = self.rmsnorm(x, w[p + "ffn_norm.weight"])
            f = torch.nn.functional.silu(n @ w[p + "ffn_gate.weight"].T) * (n @ w[p + "ffn_up.weight"].T)
            if ffn_hook is not None:
                f = ffn_hook(L, f)
            x = x + f @ w[p + "ffn_down.weight"].T
        x = self.rmsnorm(x, w["output_norm.weight"])
        out = w["token_embd.weight"] if c.tied else w["output.weight"]
        return x @ out.T

    def generate(self, prompt_ids, n_new, stop_at_eos=True):
        """Greedy continuation; returns the full id list (prompt + new)."""
        ids = list(prompt_ids)
        eos = self.tok.eos if self.tok is not None else None
        for _ in range(n_new):
            if len(ids) >= self.cfg.n_ctx:
                break
            logits = self.forward(ids)[-1]
            nxt = int(torch.argmax(logits))  # first maximum = lowest id on ties
            ids.append(nxt)
            if stop_at_eos and nxt == eos:
                break
        return ids


def main(argv=None):
    ap = argparse.ArgumentParser(description="Greedy generation with the PyTorch reference llama.")
    ap.add_argument("model")
    ap.add_argument("-p", "--prompt", default="", help="text after BOS (default: none)")
    ap.add_argument("-n", type=int, default=60, help="new tokens (default 60)")
    ap.add_argument("--ids", action="store_true", help="also print the token ids")
    ap.add_argument("--f32", action="store_true", help="compute in float32 (default float64)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(2, args.threads)))
    m = LlamaRef(args.model, torch.float32 if args.f32 else torch.float64)
    ids = m.tok.encode(args.prompt, bos=True)
    out = m.generate(ids, args.n)
    if args.ids:
        print(" ".join(map(str, out)))
    print(m.tok.decode(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
