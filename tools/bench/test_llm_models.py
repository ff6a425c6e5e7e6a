"""Tests for tools/bench/llm_models.py's synthetic vocabularies and writer:
    /usr/bin/python3 -m unittest discover -s tools/bench -p 'test_llm*.py'
"""

import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import llm_models  # noqa: E402
import gguf  # noqa: E402
from llama_tok import Tokenizer  # noqa: E402


class TestVocabs(unittest.TestCase):
    def test_synthetic_bpe(self):
        tokens, merges, types = llm_models.synthetic_bpe(49152, 0)
        self.assertEqual(len(tokens), 49152)
        self.assertEqual(len(set(tokens)), 49152)
        self.assertEqual(len(merges), 49152 - 17 - 256)
        self.assertEqual(tokens[0], "<|endoftext|>")
        have = set(tokens[:17 + 256])
        for m in merges:  # every merge joins two tokens that exist before it
            a, b = m.split(" ")
            self.assertIn(a, have)
            self.assertIn(b, have)
            have.add(a + b)
        self.assertEqual(types[:17], [3] * 17)

    def test_synthetic_spm(self):
        tokens, scores, types = llm_models.synthetic_spm(32000)
        self.assertEqual(len(tokens), 32000)
        self.assertEqual(len(set(tokens)), 32000)
        t = Tokenizer({"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
                       "tokenizer.ggml.scores": scores, "tokenizer.ggml.token_type": types})
        self.assertEqual(t.decode(t.encode("hello world, 42!")), "hello world, 42!")

    def test_write_shallow_smollm(self):
        with tempfile.TemporaryDirectory() as td:
            p = llm_models.write_model("smollm", td, "f16", 0, layers=1, verbose=False)
            g = gguf.GGUFReader(p)
            self.assertEqual(g.kv["llama.block_count"], 1)
            self.assertEqual(g.kv["tokenizer.ggml.model"], "gpt2")
            self.assertEqual(g.tensors["blk.0.attn_k.weight"].ne, (576, 192))
            self.assertNotIn("output.weight", g.tensors)
            self.assertFalse(os.path.exists(p + ".part"))


if __name__ == "__main__":
    unittest.main()
