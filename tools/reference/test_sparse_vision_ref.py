#!/usr/bin/python3
"""Cross-checks of the NAT / BiFormer references (tools/reference/nat_model.py, biformer_model.py).

The window rule is checked against hand-computed NATTEN cases (docs: ../shared/REFERENCE.md 1.1),
and both attentions against plain dense attention where they must degenerate to it:
NA with kernel * dilation == map and no rpb, BRA with topk == all regions.

    /usr/bin/python3 -m unittest tools/reference/test_sparse_vision_ref.py
"""

import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nat_model import NeighborhoodAttention2D, na_axis  # noqa: E402
from biformer_model import BiLevelRoutingAttention  # noqa: E402


def keys(length, kernel, dilation, i):
    mask, _ = na_axis(length, kernel, dilation)
    return [j for j in range(length) if mask[i, j]]


def dense(x, qkv_w, qkv_b, heads, qk, scale):
    """Plain multi-head attention over all tokens of x [N,T,C]; q/k width qk, v width C."""
    t = torch.matmul(x, qkv_w.t()) + qkv_b
    q, k, v = t[..., :qk], t[..., qk:2 * qk], t[..., 2 * qk:]
    n, T, _ = x.shape

    def h(a):
        return a.reshape(n, T, heads, -1).transpose(1, 2)

    p = torch.softmax(torch.matmul(h(q) * scale, h(k).transpose(-1, -2)), dim=-1)
    return torch.matmul(p, h(v)).transpose(1, 2).reshape(n, T, -1)


class WindowRule(unittest.TestCase):
    def test_border_shift_odd(self):
        self.assertEqual(keys(9, 7, 1, 0), list(range(0, 7)))   # shifted inward, not truncated
        self.assertEqual(keys(9, 7, 1, 4), list(range(1, 8)))   # centred
        self.assertEqual(keys(9, 7, 1, 8), list(range(2, 9)))

    def test_even_kernel(self):
        # NATTEN's current rule: r left, self, r-1 right; L=13, K=4: last query gets 9..12
        self.assertEqual(keys(13, 4, 1, 12), [9, 10, 11, 12])
        self.assertEqual(keys(13, 4, 1, 6), [4, 5, 6, 7])
        self.assertEqual(keys(13, 4, 1, 0), [0, 1, 2, 3])

    def test_uneven_dilation_groups(self):
        # L=7, d=2: group 0 = tokens 0,2,4,6 (4 tokens), group 1 = 1,3,5 (3 tokens)
        self.assertEqual(keys(7, 3, 2, 6), [2, 4, 6])
        self.assertEqual(keys(7, 3, 2, 0), [0, 2, 4])
        self.assertEqual(keys(7, 3, 2, 1), [1, 3, 5])
        self.assertEqual(keys(7, 3, 2, 5), [1, 3, 5])

    def test_every_query_sees_k_keys_and_rpb_index(self):
        for L, K, d in [(9, 7, 1), (7, 3, 2), (14, 7, 2), (12, 4, 3), (5, 5, 1)]:
            mask, rel = na_axis(L, K, d)
            self.assertTrue(bool((mask.sum(1) == K).all()), (L, K, d))
            for i in range(L):
                for j in range(L):
                    if mask[i, j]:
                        self.assertEqual(int(rel[i, j]), K - 1 + (j // d - i // d))


class Degenerate(unittest.TestCase):
    def test_na_global_is_dense(self):
        torch.manual_seed(0)
        for K, d, H in [(5, 1, 5), (3, 2, 6)]:
            na = NeighborhoodAttention2D(8, 2, K, d, rpb=False).double()
            x = torch.randn(1, H, H, 8, dtype=torch.float64)
            got = torch.matmul(na(x) - na.proj.bias, torch.linalg.inv(na.proj.weight).t())
            want = dense(x.reshape(1, H * H, 8), na.qkv.weight, na.qkv.bias, 2, 8, 0.5)
            if d == 1:
                self.assertLess(float((got.reshape(1, H * H, 8) - want).abs().max()), 1e-9)
            else:  # dilation 2 on 6: two interleaved groups per axis, dense inside each
                self.assertLess(float((got - dense_grouped(x, na, d)).abs().max()), 1e-9)

    def test_bra_all_regions_is_dense(self):
        torch.manual_seed(1)
        C, qk, heads, S, H = 8, 4, 2, 2, 6
        bra = BiLevelRoutingAttention(C, heads, S, S * S, qk_dim=qk).double()
        with torch.no_grad():
            bra.lepe.weight.zero_()
            bra.lepe.bias.zero_()
        x = torch.randn(1, H, H, C, dtype=torch.float64)
        got = torch.matmul(bra(x) - bra.wo.bias, torch.linalg.inv(bra.wo.weight).t()).reshape(1, H * H, C)
        want = dense(x.reshape(1, H * H, C), bra.qkv.qkv.weight, bra.qkv.qkv.bias, heads, qk, qk ** -0.5)
        self.assertLess(float((got - want).abs().max()), 1e-9)

    def test_bra_topk_selects_regions(self):
        # topk 1: every query attends exactly to the M tokens of one region (the argmax of its row of A)
        torch.manual_seed(2)
        C, S, H = 4, 2, 4
        bra = BiLevelRoutingAttention(C, 1, S, 1).double()
        with torch.no_grad():
            bra.lepe.weight.zero_()
            bra.lepe.bias.zero_()
        x = torch.randn(1, H, H, C, dtype=torch.float64)
        out = torch.matmul(bra(x) - bra.wo.bias, torch.linalg.inv(bra.wo.weight).t())
        t = torch.matmul(x, bra.qkv.qkv.weight.t()) + bra.qkv.qkv.bias
        q, k, v = t[..., :C], t[..., C:2 * C], t[..., 2 * C:]
        reg = [[(r // S) * 2 + a, (r % S) * 2 + b] for r in range(S * S) for a in range(2) for b in range(2)]
        toks = [reg[r * 4:(r + 1) * 4] for r in range(S * S)]
        qr = torch.stack([torch.stack([q[0, a, b] for a, b in tk]).mean(0) for tk in toks])
        kr = torch.stack([torch.stack([k[0, a, b] for a, b in tk]).mean(0) for tk in toks])
        sel = torch.argmax(qr @ kr.t(), dim=1)
        for p in range(S * S):
            ks = torch.stack([k[0, a, b] for a, b in toks[int(sel[p])]])
            vs = torch.stack([v[0, a, b] for a, b in toks[int(sel[p])]])
            for a, b in toks[p]:
                w = torch.softmax(ks @ q[0, a, b] * C ** -0.5, dim=0)
                self.assertLess(float((w @ vs - out[0, a, b]).abs().max()), 1e-9)


def dense_grouped(x, na, d):
    """Dense attention inside each (row group, column group) of a dilated map."""
    n, H, W, C = x.shape
    out = torch.zeros_like(x)
    for gy in range(d):
        for gx in range(d):
            sub = x[:, gy::d, gx::d, :]
            h, w = sub.shape[1], sub.shape[2]
            a = dense(sub.reshape(n, h * w, C), na.qkv.weight, na.qkv.bias, na.heads, C, na.scale)
            out[:, gy::d, gx::d, :] = a.reshape(n, h, w, C)
    return out


if __name__ == "__main__":
    unittest.main()
