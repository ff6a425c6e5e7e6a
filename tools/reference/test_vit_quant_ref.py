"""Checks of the quantized-ViT reference (vit_quant_ref.py): the block quantizers against hand-worked
blocks from the ggml formats, against gguf.py's independent dequantizer, and the quantized forward's
properties. Run with
    /usr/bin/python3 -m unittest discover -s tools/reference -p 'test_*.py'
"""

import os
import sys
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vit_quant_ref as q  # noqa: E402
import vit_ref  # noqa: E402
import gguf  # noqa: E402


def f16(v):
    return float(np.float16(np.float32(v)))


class TestQuantizers(unittest.TestCase):
    def test_q8_0_block(self):
        x = np.zeros(32, np.float32)
        x[0], x[1], x[2], x[3] = 1.27, -0.635, 0.005, -0.005  # d = 0.01: codes 127, -63.5 -> -64, 0.5 -> 1, -1
        raw, deq = q.quantize_q8_0(x)
        self.assertEqual(len(raw), 34)
        d = np.frombuffer(raw[:2], "<f2")[0]
        self.assertEqual(float(d), f16(np.float32(1.27) / np.float32(127)))
        codes = np.frombuffer(raw[2:], np.int8)
        self.assertEqual(list(codes[:4]), [127, -64, 1, -1])  # round half away from zero
        self.assertTrue(np.all(codes[4:] == 0))
        self.assertTrue(np.array_equal(deq, codes.astype(np.float32) * np.float32(d)))

    def test_q4_0_block(self):
        x = np.linspace(-0.5, 0.3, 32).astype(np.float32)
        x[7] = -0.8  # the signed max: d = -0.8 / -8 = 0.1
        raw, deq = q.quantize_q4_0(x)
        self.assertEqual(len(raw), 18)
        d = float(np.frombuffer(raw[:2], "<f2")[0])
        self.assertEqual(d, f16(np.float32(-0.8) / np.float32(-8)))
        nib = np.frombuffer(raw[2:], np.uint8)
        codes = np.concatenate([nib & 15, nib >> 4]).astype(int)
        self.assertEqual(codes[7], 0)  # -0.8 / 0.1 + 8.5 = 0.5 -> 0
        inv = np.float32(1) / (np.float32(-0.8) / np.float32(-8))
        want = np.minimum(15, np.trunc((x * inv).astype(np.float32) + np.float32(8.5))).astype(int)
        self.assertEqual(list(codes), list(want))
        self.assertTrue(np.allclose(deq, (codes - 8) * d))

    def test_zero_block(self):
        for fn in (q.quantize_q8_0, q.quantize_q4_0):
            raw, deq = fn(np.zeros(64, np.float32))
            self.assertTrue(np.all(deq == 0))

    def test_against_gguf_reader(self):
        """gguf.py's reader dequantizes Q8_0/Q4_0 on its own: same values as the quantizers'."""
        rng = np.random.default_rng(5)
        w = (rng.standard_normal((6, 96)) * 0.3).astype(np.float32)
        for name, gt, fn in (("q8", gguf.GGML_Q8_0, q.quantize_q8_0), ("q4", gguf.GGML_Q4_0, q.quantize_q4_0)):
            raw, deq = fn(w)
            wr = gguf.GGUFWriter()
            wr.tensors[name] = (gt, (96, 6), raw)
            r = gguf.GGUFReader(wr.to_bytes())
            self.assertTrue(np.array_equal(r.array(name), deq), name)

    def test_activations(self):
        x = torch.tensor([[0.0] * 31 + [1.27]], dtype=torch.float64)
        x[0, 0] = 0.635  # 63.5 steps -> 64
        y = q.quantize_activations(x)
        d = f16(1.27 / 127)
        self.assertEqual(float(y[0, 31]), 127 * d)
        self.assertEqual(float(y[0, 0]), 64 * d)


class TestQuantizedForward(unittest.TestCase):
    def test_close_to_plain_and_layers(self):
        cfg = q.CONFIGS["q8_0_mean"]
        m = vit_ref.build_model(cfg)
        image = q.make_image(cfg, 0)
        tq, raws = q.quantized_trace(m, "q8_0", image)
        tf = vit_ref.reference_trace(m, image)
        self.assertEqual(sorted(raws), sorted(q.linear_params(m)))
        self.assertTrue(np.array_equal(tq["embed"], tf["embed"]))  # the patch embedding is not quantized
        err = np.abs(tq["logits"] - tf["logits"]).max()
        self.assertGreater(err, 1e-4)  # the quantization is applied ...
        self.assertLess(err, 0.1 * np.abs(tf["logits"]).max())  # ... and stays small


if __name__ == "__main__":
    unittest.main()
