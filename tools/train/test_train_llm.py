"""Tests for tools/train (spm_bpe.py, train_llm.py's model and export):
    /usr/bin/python3 -m unittest discover -s tools/train -p 'test_*.py'
"""

import os
import sys
import tempfile
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import spm_bpe  # noqa: E402
import train_llm  # noqa: E402
from llama_ref import LlamaRef  # noqa: E402

torch.set_num_threads(1)

DOCS = ["In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void.",
        "Psalms 23\nThe LORD is my shepherd; I shall not want.\nHe maketh me to lie down in green pastures:",
        "And God said, Let there be light: and there was light.  Double  spaces, 1611 and (parens)..."]


class TestSpmBpe(unittest.TestCase):
    def test_vocab_and_encoding(self):
        v = spm_bpe.train(DOCS * 3, 330)
        toks, types, scores = v["tokens"], v["types"], v["scores"]
        self.assertEqual(len(toks), 330)
        self.assertEqual(toks[:4], ["<unk>", "<s>", "</s>", "<0x00>"])
        self.assertEqual(types[3:259], [6] * 256)
        self.assertEqual(len(set(toks)), len(toks))
        for t in toks[259:]:
            self.assertNotIn("\n", t)
            self.assertNotIn(spm_bpe.SPACE, t[1:])
        merged = [s for t, s in zip(toks, scores) if s < 0]
        self.assertEqual(merged, sorted(merged, reverse=True))
        tok = spm_bpe.make_tokenizer(v)
        cache = {}
        for d in DOCS + ["unseen words: zebra \u00e9t\u00e9\n\nx"]:
            ids = spm_bpe.encode_doc(tok, d, cache)
            self.assertEqual(ids, tok.encode(d, bos=False), d)
            self.assertEqual(tok.decode([1] + ids), d)
        s = spm_bpe.encode_docs(tok, DOCS, check_every=1)
        self.assertEqual(s.count(1), 3)
        self.assertEqual(s.count(2), 3)


class TestModelExport(unittest.TestCase):
    def test_forward_equals_reference_on_export(self):
        """the training model and the independent reference agree on the exported GGUF, with
        weights large enough that attention and RoPE matter."""
        v = spm_bpe.train(DOCS, 340)
        for n_kv in (1, 2, 4):
            c = train_llm.Cfg(len(v["tokens"]), dim=32, n_layer=2, n_head=4, n_kv=n_kv, ffn=64, ctx=32)
            torch.manual_seed(n_kv)
            m = train_llm.LM(c)
            with torch.no_grad():
                for n, p in m.named_parameters():
                    p.copy_(torch.randn_like(p) * (0.4 if p.dim() == 2 else 0.2) + (1.0 if p.dim() == 1 else 0.0))
            ids = [1, 270, 5, 299, 100, 42, 3, 2, 1, 280, 281, 7, 9, 11, 13, 17, 19, 23, 29, 31]
            with tempfile.TemporaryDirectory() as td:
                p = os.path.join(td, "m.gguf")
                train_llm.export_gguf(m, c, v, p, "test")
                ref = LlamaRef(p, torch.float64)
                want = ref.forward(ids).numpy()
            m.eval()
            with torch.no_grad():
                have = m(torch.tensor([ids]))[0].double().numpy()
            self.assertGreater(float(np.std(want)), 1.0)
            np.testing.assert_allclose(have, want, rtol=0, atol=2e-4 * max(1.0, float(np.abs(want).max())),
                                       err_msg="n_kv %d" % n_kv)
            self.assertEqual(ref.tok.tokens, v["tokens"])

    def test_doc_nll_scores_each_token_once(self):
        seen = []

        def fn(x):
            seen.append(len(x))
            return torch.zeros(len(x), 5)

        doc = np.arange(23) % 5
        tot, n = train_llm.doc_nll(fn, doc, 8)
        self.assertEqual(n, 22)
        self.assertAlmostEqual(tot, 22 * np.log(5))


if __name__ == "__main__":
    unittest.main()
