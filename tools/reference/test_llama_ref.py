"""Tests for the llama reference (tools/reference/llama_ref.py, llama_tok.py, llama_fixtures.py):
    /usr/bin/python3 -m unittest discover -s tools/reference -p 'test_llama*.py'
The tokenizer conformance and stories260K checks need ../shared (skipped without it).
"""

import os
import sys
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "convert"))
import gguf  # noqa: E402
import llama_fixtures as lf  # noqa: E402
import llama_gguf as lg  # noqa: E402
from llama_ref import LlamaRef  # noqa: E402
from llama_tok import Tokenizer  # noqa: E402

SHARED = lf.find_shared()
SPM_VOCAB = os.path.join(SHARED, "data", "tokenizers", "ggml-vocab-llama-spm.gguf")
FIX = os.path.join(ROOT, "tests", "fixtures", "llama")

torch.set_num_threads(1)


class TestTokenizer(unittest.TestCase):
    @unittest.skipUnless(os.path.exists(SPM_VOCAB), "needs ../shared tokenizer files")
    def test_llama_spm_conformance(self):
        """llama.cpp's own test strings and expected ids for the Llama SPM vocab."""
        t = Tokenizer(gguf.GGUFReader(SPM_VOCAB).kv)
        with open(SPM_VOCAB + ".inp", encoding="utf-8") as f:
            inp = f.read().split("\n__ggml_vocab_test__\n")
        with open(SPM_VOCAB + ".out") as f:
            out = f.read().split("\n")
        n = 0
        for text, ids in zip(inp, out):
            self.assertEqual(t.encode(text, bos=False), [int(x) for x in ids.split()], repr(text))
            n += 1
        self.assertGreater(n, 40)

    def test_synthetic_roundtrip(self):
        w = gguf.GGUFWriter()
        lg.add_spm_tokenizer(w, *lf.synthetic_vocab())
        t = Tokenizer(gguf.GGUFReader(w.to_bytes()).kv)
        for s in ["the cat", " leading", "caf\u00e9 is", "a\nb", "", "hello, world?"]:
            self.assertEqual(t.decode(t.encode(s, bos=True)), s)
        self.assertEqual(t.encode("the cat", bos=True), [1, 43, 52])
        # a character with no token and no byte token becomes unk per byte
        self.assertEqual(t.encode("\u2603", bos=False), [11, 10, 0, 0])


class TestReference(unittest.TestCase):
    def test_rope_adjacent_pairs(self):
        """position 0 is the identity; pair (2i, 2i+1) rotates by pos * base^(-2i/n_rot)."""
        m = LlamaRef(os.path.join(FIX, "gqa2_untied_rope500k_f32.gguf"))
        x = torch.randn(3, 2, 8, dtype=torch.float64)
        y = m.rope(x, torch.arange(3))
        torch.testing.assert_close(y[0], x[0])
        th = 2 * 500000.0 ** (-2 * 1 / 8)
        c, s = np.cos(th), np.sin(th)
        torch.testing.assert_close(y[2, :, 2], x[2, :, 2] * c - x[2, :, 3] * s)
        torch.testing.assert_close(y[2, :, 3], x[2, :, 2] * s + x[2, :, 3] * c)

    def test_causal_prefix(self):
        """logits of a prefix do not depend on later tokens (causal mask, no KV cache)."""
        m = LlamaRef(os.path.join(FIX, "mqa_tied_f16.gguf"))
        a = m.forward([1, 5, 9, 12, 40, 41]).numpy()
        b = m.forward([1, 5, 9]).numpy()
        np.testing.assert_allclose(a[:3], b, rtol=0, atol=1e-12)

    def test_fixtures_match_reference(self):
        """every random golden = the reference's float64 logits on its model (f32-rounded)."""
        for cfg in lf.CONFIGS:
            g = gguf.GGUFReader(os.path.join(FIX, cfg["name"] + ".golden.gguf"))
            m = LlamaRef(os.path.join(FIX, g.kv["golden.model"]))
            ids = lg.read_i32(g, "tokens").tolist()
            self.assertEqual(ids, m.tok.encode(g.kv["golden.prompt"], bos=True))
            L = g.array("logits")
            self.assertEqual(L.shape, (len(ids), 64))
            np.testing.assert_array_equal(m.forward(ids).numpy().astype(np.float32), L, err_msg=cfg["name"])

    @unittest.skipUnless(os.path.exists(lf.KJV_MODEL), "needs models/llm-kjv.gguf")
    def test_kjv_golden(self):
        g = gguf.GGUFReader(os.path.join(FIX, "llm-kjv.golden.gguf"))
        self.assertEqual(g.kv["golden.model_sha256"], lf.sha256(lf.KJV_MODEL))
        m = LlamaRef(lf.KJV_MODEL)
        ids = lg.read_i32(g, "tokens").tolist()
        prompt = m.tok.encode(g.kv["golden.prompt"], bos=True)
        self.assertEqual(ids[:len(prompt)], prompt)
        self.assertEqual(m.generate(prompt, len(ids) - len(prompt)), ids)
        self.assertEqual(m.tok.decode(ids), g.kv["golden.text"])
        pos = g.kv["golden.logits_first_pos"]
        L = m.forward(ids[:pos + 1]).numpy()[pos:].astype(np.float32)
        np.testing.assert_array_equal(L, g.array("logits"))

    def test_fixture_sizes(self):
        total = sum(os.path.getsize(os.path.join(FIX, f)) for f in os.listdir(FIX))
        self.assertLess(total, 300 * 1024)


if __name__ == "__main__":
    unittest.main()
