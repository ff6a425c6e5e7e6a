#!/usr/bin/python3
"""Op-level golden fixtures for neighborhood attention and bi-level routing attention.

Writes tests/fixtures/sparse/{na,bra}_<name>.golden.gguf from an independent PyTorch
(float64) implementation of each op, written from the upstream definitions rather than from
Sparrow's C code:

  na_*   NATTEN's reference mask (csrc/include/natten/cuda/reference/mask.hpp: per-axis
         neighbour test with dilation groups, inward-shifted windows, even kernels, stride
         leaders, causal ends), the N-D neighbourhood as the product of the per-axis masks,
         logits = scale * q.k + rpb[(K-1) + (j' - i')] per axis (NATTEN <= 0.17.5), softmax
         over the masked full attention matrix. Tensors: qkv {3*heads*head_dim, tokens}
         ([q | k | v] per token, tokens row-major over the grid), out {heads*head_dim, tokens},
         rpb {2K_last-1, .., 2K_0-1, heads} when present; keys na.n_dims, na.n_heads,
         na.head_dim, na.causal (bit per axis), na.{size,kernel,dilation,stride}.<axis>.
  bra_*  BiFormer's ops/bra_legacy.py forward (identity kv downsampling, no routing params,
         hard routing): regions "n (j h) (i w) c -> n (j i) h w c", region q/k = mean over
         the region's tokens (all heads), A = (q_r * scale) @ k_r^T, torch.topk, K/V gathered
         per region (the top-k copies the C op avoids), per-head softmax((q * scale) @ k^T) v,
         scale = qk_dim^-0.5. Tensors: qkv {2*qk_dim + v_dim, tokens}, out {v_dim, tokens}
         (before LCE and wo); keys bra.{h,w,n_win,topk,n_heads,qk_dim,v_dim}. Random data:
         no routing ties (checked: the k-th and (k+1)-th scores differ by > 1e-6).

Run: /usr/bin/python3 tools/reference/sparse_op_fixtures.py  (deterministic; seeds fixed)
"""

import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "convert"))
import gguf  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fixtures", "sparse")


# ---- neighborhood attention -------------------------------------------------------------------


def na_axis_mask(L, K, d, s, causal):
    """[L, L] bool neighbour matrix and [L, L] rpb index (K-1 + j' - i') of one axis."""
    left = K // 2
    right = K // 2 + K % 2 - 1
    nb = torch.zeros(L, L, dtype=torch.bool)
    idx = torch.zeros(L, L, dtype=torch.long)
    for i in range(L):
        g, ii = i % d, i // d
        Lg = L // d + (1 if g < L % d else 0)
        if causal:
            leader = min((ii // s) * s + s - 1, Lg - 1)
            start = max(leader - (left + right), 0)
            end = min(ii + 1, Lg)
        else:
            leader = min((ii // s) * s + s // 2, Lg - 1)
            start = max(leader - left, 0) + (Lg - right - leader - 1 if leader + right >= Lg else 0)
            end = start + K
        for j in range(L):
            if j % d == g and start <= j // d < end:
                nb[i, j] = True
                idx[i, j] = (K - 1) + (j // d - ii)
    return nb, idx


def na_reference(q, k, v, sizes, kernels, dils, strides, causal_bits, rpb, scale):
    """q, k, v: [T, heads, hd] float64 (T row-major over sizes); rpb [heads, 2K0-1, ...] or None."""
    nd = len(sizes)
    masks = [na_axis_mask(sizes[a], kernels[a], dils[a], strides[a], (causal_bits >> a) & 1) for a in range(nd)]
    T = int(np.prod(sizes))
    coords = torch.tensor(np.array(np.unravel_index(np.arange(T), sizes)).T)  # [T, nd]
    allowed = torch.ones(T, T, dtype=torch.bool)
    for a in range(nd):
        allowed &= masks[a][0][coords[:, a][:, None], coords[:, a][None, :]]
    logits = torch.einsum("ihd,jhd->hij", q, k) * scale  # [heads, T, T]
    if rpb is not None:
        index = tuple(masks[a][1][coords[:, a][:, None], coords[:, a][None, :]] for a in range(nd))
        bias = torch.stack([rpb[h][index] for h in range(rpb.shape[0])])  # [heads, T, T]
        logits = logits + bias
    logits = logits.masked_fill(~allowed[None], float("-inf"))
    p = torch.softmax(logits, dim=-1)
    return torch.einsum("hij,jhd->ihd", p, v)


NA_CASES = [
    # name, sizes, kernels, dilations, strides, causal bits, heads, head_dim, rpb
    ("na_2d_rpb_dil", (9, 11), (3, 5), (2, 2), (1, 1), 0, 2, 8, True),
    ("na_2d_even_stride", (10, 9), (4, 2), (1, 3), (2, 2), 0, 2, 16, False),
    ("na_1d_causal", (37,), (8,), (3,), (1,), 1, 2, 8, False),
    ("na_3d_mixed", (4, 6, 7), (3, 2, 3), (1, 2, 1), (1, 1, 3), 4, 1, 12, False),
    ("na_2d_nat", (14, 14), (7, 7), (1, 1), (1, 1), 0, 2, 16, True),
]


def make_na(case, seed):
    name, sizes, kernels, dils, strides, causal, heads, hd, has_rpb = case
    g = torch.Generator().manual_seed(seed)
    T = int(np.prod(sizes))
    w = heads * hd
    qkv = (torch.rand(T, 3 * w, generator=g, dtype=torch.float64) * 2 - 1).float()
    rpb = None
    if has_rpb:
        shape = (heads,) + tuple(2 * K - 1 for K in kernels)
        rpb = (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1).float()
    q = qkv[:, :w].double().reshape(T, heads, hd)
    k = qkv[:, w:2 * w].double().reshape(T, heads, hd)
    v = qkv[:, 2 * w:].double().reshape(T, heads, hd)
    scale = float(np.float32(1.0 / np.sqrt(hd)))  # the op's f32 scale (head_dim^-0.5)
    out = na_reference(q, k, v, sizes, kernels, dils, strides, causal, None if rpb is None else rpb.double(), scale)
    wr = gguf.GGUFWriter()
    wr.add_string("general.architecture", "na-golden")
    wr.add_u32("na.n_dims", len(sizes))
    wr.add_u32("na.n_heads", heads)
    wr.add_u32("na.head_dim", hd)
    wr.add_u32("na.causal", causal)
    for a in range(len(sizes)):
        wr.add_u32("na.size.%d" % a, sizes[a])
        wr.add_u32("na.kernel.%d" % a, kernels[a])
        wr.add_u32("na.dilation.%d" % a, dils[a])
        wr.add_u32("na.stride.%d" % a, strides[a])
    wr.add_tensor("qkv", qkv.numpy().astype(np.float32))
    wr.add_tensor("out", out.reshape(T, w).numpy().astype(np.float32))
    if rpb is not None:
        wr.add_tensor("rpb", rpb.numpy().astype(np.float32))  # ne = reversed numpy shape
    path = os.path.join(OUT, name + ".golden.gguf")
    wr.write(path)
    return path


# ---- bi-level routing attention ---------------------------------------------------------------


def bra_reference(q_pix, kv_pix, H, W, n_win, topk, heads, qk_dim, dim):
    """q_pix [H, W, qk], kv_pix [H, W, qk + dim] float64 -> out [H, W, dim] (before lepe/wo)."""
    S = n_win
    h, w = H // S, W // S
    # n (j h) (i w) c -> n (j i) h w c
    q = q_pix.reshape(S, h, S, w, qk_dim).permute(0, 2, 1, 3, 4).reshape(1, S * S, h, w, qk_dim)
    kv = kv_pix.reshape(S, h, S, w, qk_dim + dim).permute(0, 2, 1, 3, 4).reshape(1, S * S, h, w, qk_dim + dim)
    scale = qk_dim ** -0.5
    q_win = q.mean([2, 3])
    k_win = kv[..., :qk_dim].mean([2, 3])
    logit = (q_win * scale) @ k_win.transpose(-2, -1)  # [1, P, P]
    top = torch.topk(logit, k=topk + 1 if topk < S * S else topk, dim=-1)
    if topk < S * S:
        gap = (top.values[..., topk - 1] - top.values[..., topk]).abs().min().item()
        assert gap > 1e-6, "routing tie within 1e-6: pick another seed"
    r_idx = top.indices[..., :topk]
    P, M = S * S, h * w
    kv_flat = kv.reshape(1, P, M, qk_dim + dim)
    sel = torch.gather(kv_flat.view(1, 1, P, M, qk_dim + dim).expand(-1, P, -1, -1, -1), 2,
                       r_idx.view(1, P, topk, 1, 1).expand(-1, -1, -1, M, qk_dim + dim))
    k_sel, v_sel = sel.split([qk_dim, dim], dim=-1)
    m = heads
    k_sel = k_sel.reshape(P, topk * M, m, qk_dim // m).permute(0, 2, 3, 1)  # (P, m, c, topk*M)
    v_sel = v_sel.reshape(P, topk * M, m, dim // m).permute(0, 2, 1, 3)  # (P, m, topk*M, c)
    qp = q.reshape(P, M, m, qk_dim // m).permute(0, 2, 1, 3)  # (P, m, M, c)
    attn = torch.softmax((qp * scale) @ k_sel, dim=-1)
    out = attn @ v_sel  # (P, m, M, c)
    out = out.permute(0, 2, 1, 3).reshape(S, S, h, w, dim).permute(0, 2, 1, 3, 4).reshape(H, W, dim)
    return out


BRA_CASES = [
    # name, H, W, n_win, topk, heads, qk_dim, v_dim
    ("bra_s1_like", 14, 14, 7, 1, 2, 16, 16),
    ("bra_topk4", 12, 18, 3, 4, 2, 16, 24),
    ("bra_topk16", 14, 14, 7, 16, 4, 32, 32),
    ("bra_all", 8, 8, 4, 16, 2, 8, 8),
    ("bra_small_regions", 10, 15, 5, 3, 1, 4, 4),
]


def make_bra(case, seed):
    name, H, W, S, topk, heads, qk, vd = case
    g = torch.Generator().manual_seed(seed)
    T = H * W
    qkv = (torch.rand(T, 2 * qk + vd, generator=g, dtype=torch.float64) * 2 - 1).float()
    x = qkv.double().reshape(H, W, 2 * qk + vd)
    out = bra_reference(x[..., :qk], x[..., qk:], H, W, S, topk, heads, qk, vd)
    wr = gguf.GGUFWriter()
    wr.add_string("general.architecture", "bra-golden")
    for k_, v_ in (("h", H), ("w", W), ("n_win", S), ("topk", topk), ("n_heads", heads), ("qk_dim", qk),
                   ("v_dim", vd)):
        wr.add_u32("bra." + k_, v_)
    wr.add_tensor("qkv", qkv.numpy().astype(np.float32))
    wr.add_tensor("out", out.reshape(T, vd).numpy().astype(np.float32))
    path = os.path.join(OUT, name + ".golden.gguf")
    wr.write(path)
    return path


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for i, c in enumerate(NA_CASES):
        p = make_na(c, 1000 + i)
        print("wrote", os.path.relpath(p, ROOT), os.path.getsize(p), "bytes")
    for i, c in enumerate(BRA_CASES):
        p = make_bra(c, 2000 + i)
        print("wrote", os.path.relpath(p, ROOT), os.path.getsize(p), "bytes")


if __name__ == "__main__":
    main()
