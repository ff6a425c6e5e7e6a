#!/usr/bin/python3
"""NAT / BiFormer model files with bad metadata or tensors are refused with a one-line error.

Each case rewrites a committed fixture model (tests/fixtures/{nat,biformer}/) with one key or
tensor changed and runs `sparrow plan` on it: the exit status must be a plain error (1..127, not
a signal), stderr must name the problem, and the unmodified file must plan fine.

Usage: sparse_vision_bad_models.py SPARROW_BINARY SOURCE_DIR
"""

import os
import subprocess
import sys
import tempfile

SPARROW, SRC = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SRC, "tools", "convert"))
import gguf  # noqa: E402

A = gguf.GGUF_ARRAY
U32, I32, F32 = gguf.GGUF_U32, gguf.GGUF_I32, gguf.GGUF_F32


def rewrite(src, dst, kv=None, drop_kv=(), drop_tensors=(), tensor_ne=None):
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(r.alignment)
    for k, v in r.kv.items():
        if k in drop_kv or k == "general.alignment":
            continue
        t = r.kv_type[k]
        w.kv[k] = (A, (t[1], v)) if isinstance(t, tuple) else (t, v)
    for k, tv in (kv or {}).items():
        w.kv[k] = tv
    for name, t in r.tensors.items():
        if name in drop_tensors:
            continue
        ne = (tensor_ne or {}).get(name, t.ne)
        raw = bytes(t.data)
        w.tensors[name] = (t.type, tuple(ne), raw if ne == t.ne else raw[:_nbytes(t, ne)])
    w.write(dst)


def _nbytes(t, ne):
    n = 1
    for d in ne:
        n *= d
    return n * (4 if t.type == gguf.GGML_F32 else 2)


def plan(path):
    return subprocess.run([SPARROW, "plan", path], capture_output=True, text=True)


CASES = {
    "nat/nat_dil_pad_ls.gguf": [
        ("depths do not add up", dict(kv={"nat.depths": (A, (U32, [2, 1]))}), "depths"),
        ("one kernel size too few", dict(kv={"nat.kernel_sizes": (A, (U32, [3, 5, 3]))}), "kernel_sizes"),
        ("dilations missing", dict(drop_kv=("nat.dilations",)), "nat.dilations"),
        ("heads do not divide the level", dict(kv={"nat.attention.head_count": (A, (U32, [3, 2]))}), "heads"),
        ("zero dilation", dict(kv={"nat.dilations": (A, (U32, [2, 1, 0, 2]))}), "dilations"),
        ("rpb of the wrong kernel", dict(tensor_ne={"blk.0.attn_rpb": (3, 3, 1)}), "blk.0.attn_rpb"),
        ("qkv weight missing", dict(drop_tensors=("blk.1.attn_qkv.weight",)), "blk.1.attn_qkv.weight"),
        ("one layer-scale vector", dict(drop_tensors=("blk.2.gamma2",)), "gamma"),
        ("std of zero", dict(kv={"nat.image_std": (A, (F32, [0.2, 0.0, 0.3]))}), "image_std"),
    ],
    "biformer/bra_pad.gguf": [
        ("topk above the regions", dict(kv={"biformer.topk": (A, (I32, [10, 3, -2]))}), "topk"),
        ("n_win of the wrong length", dict(kv={"biformer.n_win": (A, (U32, [3, 2]))}), "n_win"),
        ("even LCE kernel", dict(kv={"biformer.lce_kernel": (U32, 4)}), "kernel"),
        ("qk_dim not a multiple of the heads", dict(kv={"biformer.qk_dim": (A, (U32, [8, 7, 16]))}), "qk_dim"),
        ("folded BatchNorm missing", dict(drop_tensors=("norm.shift",)), "norm.shift"),
        ("LCE kernel of the wrong size", dict(tensor_ne={"blk.0.attn_lce.weight": (8, 3, 3)}),
         "blk.0.attn_lce.weight"),
    ],
}


def main():
    bad = 0
    with tempfile.TemporaryDirectory(prefix="spr_bad_") as tmp:
        for fixture, cases in CASES.items():
            src = os.path.join(SRC, "tests", "fixtures", fixture)
            r = plan(src)
            if r.returncode != 0:
                print("FAIL %s: the unmodified model does not plan: %s" % (fixture, r.stderr.strip()))
                bad += 1
            for what, change, needle in cases:
                dst = os.path.join(tmp, "bad.gguf")
                rewrite(src, dst, **change)
                r = plan(dst)
                err = r.stderr.strip()
                ok = 0 < r.returncode < 128 and needle in err and err.count("\n") == 0
                print("%s %s: %s -> exit %d: %s" % ("ok  " if ok else "FAIL", fixture, what, r.returncode, err))
                bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
