"""Tests for tools/convert/vit.py: run with
    /usr/bin/python3 -m unittest discover -s tools/convert -p 'test_*.py'
The checkpoints are made by tools/reference/vit_model.py's exporters (random weights).
"""

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import gguf  # noqa: E402
import vit  # noqa: E402
from vit_model import RefViT  # noqa: E402

CONVERTER = os.path.join(HERE, "vit.py")


def small(**kw):
    cfg = dict(image_size=8, patch=4, channels=3, dim=16, depth=2, heads=2, ffn=24, classes=5)
    cfg.update(kw)
    m = RefViT(**cfg)
    m.init_random(7)
    return m


def save_st(path, sd, dtype="F32"):
    header, blobs, off = {}, [], 0
    for k, v in sd.items():
        a = v.numpy().astype(np.float32)
        if dtype == "BF16":
            raw = (a.view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            raw = a.astype("<f4").tobytes()
        header[k] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class ConvertCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def convert(self, ckpt, *args):
        out = self.path("out.gguf")
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = vit.main([ckpt, "-o", out] + list(args))
        self.assertEqual(rc, 0, err.getvalue())
        return gguf.GGUFReader(out)

    def fails(self, ckpt, *args):
        """Run the converter as a subprocess; expect exit 2 and one line on stderr. Returns it."""
        r = subprocess.run([sys.executable, CONVERTER, ckpt, "-o", self.path("bad.gguf")] + list(args),
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertFalse(os.path.exists(self.path("bad.gguf")))
        return lines[0]

    def save_pth(self, sd, name="m.pth"):
        p = self.path(name)
        torch.save(sd, p)
        return p


class TestTimm(ConvertCase):
    def test_metadata_and_layouts(self):
        m = small()
        g = self.convert(self.save_pth(m.timm_state_dict()), "--heads", "2", "--mean", "0.5", "--std", "0.25")
        kv = g.kv
        self.assertEqual(kv["general.architecture"], "vit")
        self.assertEqual(kv["general.name"], "m")
        for k, v in (("image_size", 8), ("num_channels", 3), ("patch_size", 4), ("embedding_length", 16),
                     ("block_count", 2), ("attention.head_count", 2), ("feed_forward_length", 24),
                     ("num_classes", 5)):
            self.assertEqual(kv["vit." + k], v, k)
            self.assertEqual(g.kv_type["vit." + k], gguf.GGUF_U32, k)
        self.assertEqual(kv["vit.pooling"], "cls")
        self.assertIs(kv["vit.distilled"], False)
        self.assertAlmostEqual(kv["vit.attention.layer_norm_epsilon"], 1e-6)
        self.assertAlmostEqual(kv["vit.attention.scale"], 8 ** -0.5, places=6)
        self.assertEqual(kv["vit.image_mean"], [0.5] * 3)
        self.assertEqual(kv["vit.image_std"], [0.25] * 3)
        self.assertNotIn("vit.class_labels", kv)
        ne = {n: t.ne for n, t in g.tensors.items()}
        self.assertEqual(ne["patch_embd.weight"], (3, 4, 4, 16))
        self.assertEqual(ne["pos_embd"], (16, 5))
        self.assertEqual(ne["cls_token"], (16,))
        self.assertEqual(ne["blk.1.attn_qkv.weight"], (16, 48))
        self.assertEqual(ne["blk.1.ffn_up.weight"], (16, 24))
        self.assertEqual(ne["blk.1.ffn_down.weight"], (24, 16))
        self.assertEqual(ne["head.weight"], (16, 5))
        # NHWC kernel: element [d][y][x][c] == PyTorch weight[d][c][y][x]
        k = g.array("patch_embd.weight")
        self.assertEqual(k[5, 1, 2, 0], m.patch_w[5, 0, 1, 2].item())
        self.assertEqual(k[9, 3, 0, 2], m.patch_w[9, 2, 3, 0].item())
        np.testing.assert_array_equal(g.array("blk.0.attn_qkv.weight"), m.blocks[0].qkv_w.detach().numpy())
        np.testing.assert_array_equal(g.array("pos_embd"), m.pos.detach().numpy())
        self.assertTrue(all(t.type == gguf.GGML_F32 for t in g.tensors.values()))

    def test_f16_types(self):
        m = small()
        g = self.convert(self.save_pth(m.timm_state_dict()), "--heads", "2", "--type", "f16")
        f16 = {n for n, t in g.tensors.items() if t.type == gguf.GGML_F16}
        want = {"patch_embd.weight", "head.weight"} | {"blk.%d.%s.weight" % (l, n) for l in range(2)
                                                       for n in ("attn_qkv", "attn_out", "ffn_up", "ffn_down")}
        self.assertEqual(f16, want)
        self.assertEqual(g.kv["general.file_type"], 1)
        np.testing.assert_array_equal(g.array("head.weight"), m.head_w.detach().half().float().numpy())

    def test_distilled_mean_and_nobias(self):
        m = small(distilled=True, qkv_bias=False)
        g = self.convert(self.save_pth({"model": m.timm_state_dict()}), "--heads", "4")
        self.assertIs(g.kv["vit.distilled"], True)
        self.assertEqual(g.tensors["pos_embd"].ne, (16, 6))
        self.assertIn("dist_token", g.tensors)
        self.assertIn("head_dist.weight", g.tensors)
        self.assertNotIn("blk.0.attn_qkv.bias", g.tensors)
        m = small(pool="mean")
        g = self.convert(self.save_pth(m.timm_state_dict()), "--heads", "2")
        self.assertEqual(g.kv["vit.pooling"], "mean")
        np.testing.assert_array_equal(g.array("norm.weight"), m.norm_w.detach().numpy())

    def test_layerscale_is_folded(self):
        m = small()
        sd = m.timm_state_dict()
        gam = torch.linspace(0.1, 2.0, 16)
        sd["blocks.1.ls1.gamma"] = gam
        sd["blocks.1.ls2.gamma"] = gam * 2
        g = self.convert(self.save_pth(sd), "--heads", "2")
        np.testing.assert_allclose(g.array("blk.1.attn_out.weight"), (gam[:, None] * m.blocks[1].out_w).detach(),
                                   rtol=1e-6)
        np.testing.assert_allclose(g.array("blk.1.ffn_down.bias"), (2 * gam * m.blocks[1].down_b).detach(),
                                   rtol=1e-6)
        np.testing.assert_array_equal(g.array("blk.0.attn_out.weight"), m.blocks[0].out_w.detach().numpy())

    def test_labels_file_and_module_prefix(self):
        m = small()
        sd = {"state_dict": {"module." + k: v for k, v in m.timm_state_dict().items()}}
        lp = self.path("labels.txt")
        with open(lp, "w") as f:
            f.write("a\nb b\nc/d\ne\nf\n\n")
        g = self.convert(self.save_pth(sd), "--heads", "2", "--labels", lp, "--name", "tiny")
        self.assertEqual(g.kv["vit.class_labels"], ["a", "b b", "c/d", "e", "f"])
        self.assertEqual(g.kv["general.name"], "tiny")


class TestSchemesAgree(ConvertCase):
    """The same model saved in timm, torchvision and HF naming converts to the same tensors."""

    def test_same_tensors(self):
        m = small()
        ref = self.convert(self.save_pth(m.timm_state_dict()), "--heads", "2")
        ref_t = {n: ref.array(n) for n in ref.tensors}
        tv = self.convert(self.save_pth(m.torchvision_state_dict(), "tv.pth"), "--heads", "2")
        tv_old = self.convert(self.save_pth(m.torchvision_state_dict("old"), "tv_old.pth"), "--heads", "2")
        os.makedirs(self.path("hf"))
        with open(self.path("hf/config.json"), "w") as f:
            json.dump(m.hf_config(["l%d" % i for i in range(5)]), f)
        hf_path = self.path("hf/model.safetensors")
        save_st(hf_path, m.hf_state_dict())
        hf = self.convert(hf_path, "--eps", "1e-6")
        for g in (tv, tv_old, hf):
            self.assertEqual(list(g.tensors), list(ref.tensors))
            for n in ref.tensors:
                np.testing.assert_array_equal(g.array(n), ref_t[n], n)
        self.assertEqual(hf.kv["vit.class_labels"], ["l%d" % i for i in range(5)])
        self.assertEqual(hf.kv["vit.attention.head_count"], 2)

    def test_hf_defaults_and_bf16(self):
        m = small(heads=4)
        os.makedirs(self.path("hf"))
        cfg = m.hf_config()
        del cfg["layer_norm_eps"]
        cfg["id2label"] = {str(i): "LABEL_%d" % i for i in range(5)}
        with open(self.path("hf/config.json"), "w") as f:
            json.dump(cfg, f)
        with open(self.path("hf/preprocessor_config.json"), "w") as f:
            json.dump({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "rescale_factor": 1 / 255}, f)
        p = self.path("hf/model.safetensors")
        save_st(p, m.hf_state_dict(), "BF16")
        g = self.convert(p)
        self.assertAlmostEqual(g.kv["vit.attention.layer_norm_epsilon"], 1e-12)
        self.assertEqual(g.kv["vit.attention.head_count"], 4)
        self.assertNotIn("vit.class_labels", g.kv)  # LABEL_i defaults carry no information
        self.assertEqual(g.kv["vit.image_mean"], [0.5] * 3)
        w = m.blocks[0].qkv_w.detach().numpy()
        want = (w.view(np.uint32) & 0xFFFF0000).view(np.float32)
        np.testing.assert_array_equal(g.array("blk.0.attn_qkv.weight"), want)


class TestErrors(ConvertCase):
    def setUp(self):
        super().setUp()
        self.m = small()

    def test_missing_tensor(self):
        sd = self.m.timm_state_dict()
        del sd["blocks.1.mlp.fc2.weight"]
        line = self.fails(self.save_pth(sd), "--heads", "2")
        self.assertIn("blocks.1.mlp.fc2.weight", line)
        self.assertIn("missing", line)

    def test_misshaped_tensor(self):
        sd = self.m.timm_state_dict()
        sd["blocks.0.attn.qkv.weight"] = torch.zeros(47, 16)
        line = self.fails(self.save_pth(sd), "--heads", "2")
        self.assertIn("blocks.0.attn.qkv.weight", line)
        self.assertIn("[47, 16]", line)

    def test_heads_required(self):
        line = self.fails(self.save_pth(self.m.timm_state_dict()))
        self.assertIn("--heads", line)
        self.assertIn("not a multiple", self.fails(self.save_pth(self.m.timm_state_dict()), "--heads", "3"))

    def test_unknown_tensor(self):
        sd = self.m.timm_state_dict()
        sd["blocks.0.attn.surprise"] = torch.zeros(3)
        line = self.fails(self.save_pth(sd), "--heads", "2")
        self.assertIn("blocks.0.attn.surprise", line)
        self.convert(self.save_pth(sd), "--heads", "2", "--allow-unused")

    def test_unsupported_features(self):
        sd = self.m.timm_state_dict()
        sd["reg_token"] = torch.zeros(1, 4, 16)
        self.assertIn("register tokens", self.fails(self.save_pth(sd), "--heads", "2"))
        sd = self.m.timm_state_dict()
        sd["blocks.0.attn.q_norm.weight"] = torch.zeros(8)
        self.assertIn("q_norm", self.fails(self.save_pth(sd), "--heads", "2"))

    def test_option_mismatches(self):
        p = self.save_pth(self.m.timm_state_dict())
        self.assertIn("--image-size 16", self.fails(p, "--heads", "2", "--image-size", "16"))
        self.assertIn("mean", self.fails(p, "--heads", "2", "--pool", "mean"))
        self.assertIn("--mean/--std", self.fails(p, "--heads", "2", "--mean", "1", "2", "--std", "1"))
        lp = self.path("l.txt")
        with open(lp, "w") as f:
            f.write("a\nb\n")
        self.assertIn("2 class labels given for 5 classes", self.fails(p, "--heads", "2", "--labels", lp))

    def test_bad_files(self):
        self.assertIn("no such file", self.fails(self.path("nope.pth")))
        bad = self.path("junk.pth")
        with open(bad, "wb") as f:
            f.write(b"not a checkpoint")
        self.assertIn("torch.load failed", self.fails(bad))
        st = self.path("junk.safetensors")
        with open(st, "wb") as f:
            f.write(struct.pack("<Q", 1000) + b"{}")
        self.assertIn("header length", self.fails(st))
        other = self.save_pth({"conv.weight": torch.zeros(3)}, "other.pth")
        self.assertIn("unrecognized checkpoint", self.fails(other))


if __name__ == "__main__":
    unittest.main()
