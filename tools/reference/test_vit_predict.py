"""End-to-end test of vit_predict.py on a tiny random model and synthetic IDX files. Run with
    /usr/bin/python3 -m unittest discover -s tools/reference -p 'test_*.py'
"""

import gzip
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from vit_model import RefViT  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def idx_bytes(a):
    return struct.pack(">BBBB", 0, 0, 8, a.ndim) + struct.pack(">%dI" % a.ndim, *a.shape) + a.tobytes()


class TestPredict(unittest.TestCase):
    def test_matches_reference(self):
        m = RefViT(image_size=8, patch=4, channels=1, dim=16, depth=1, heads=2, ffn=16, classes=4)
        m.init_random(11)
        rng = np.random.default_rng(5)
        imgs = rng.integers(0, 256, size=(37, 8, 8), dtype=np.uint8)
        labels = rng.integers(0, 4, size=37, dtype=np.uint8)
        mean, std = 0.3, 0.4
        with torch.no_grad():
            x = (torch.from_numpy(imgs.astype(np.float64)) / 255.0 - mean) / std
            want = m.double()(x[:, None]).argmax(1).numpy()
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = os.path.join(tmp, "m.pth")
            torch.save(m.float().timm_state_dict(), ckpt)
            model = os.path.join(tmp, "m.gguf")
            subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert", "vit.py"), ckpt, "-o", model,
                            "--heads", "2", "--mean", str(mean), "--std", str(std), "-q"], check=True)
            ip, lp, out = (os.path.join(tmp, n) for n in ("i.idx.gz", "l.idx", "p.txt"))
            with open(ip, "wb") as f:
                f.write(gzip.compress(idx_bytes(imgs)))
            with open(lp, "wb") as f:
                f.write(idx_bytes(labels))
            r = subprocess.run([sys.executable, os.path.join(HERE, "vit_predict.py"), model, "--idx-images", ip,
                                "--idx-labels", lp, "--out", out, "--precision", "f64", "--batch", "10"],
                               capture_output=True, text=True, check=True)
            with open(out) as f:
                got = np.array([int(s) for s in f.read().split()])
        np.testing.assert_array_equal(got, want)
        acc = 100 * np.mean(want == labels)
        self.assertIn("top-1: %.2f%% (%d/37)" % (acc, np.sum(want == labels)), r.stdout)


if __name__ == "__main__":
    unittest.main()
