"""Tests for tools/convert/llama2c.py and hf_llama.py: run with
    /usr/bin/python3 -m unittest discover -s tools/convert -p 'test_llama*.py'
Checkpoints are written by the tests (random weights); stories260K tests need ../shared.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import gguf  # noqa: E402
import llama_gguf as lg  # noqa: E402
import llama_hf_ref as hfr  # noqa: E402
from llama_fixtures import synthetic_vocab  # noqa: E402
from llama_ref import LlamaRef  # noqa: E402
from llama_tok import Tokenizer  # noqa: E402

def _find_shared():
    """$SPARROW_SHARED, else ../shared next to the checkout (or next to its worktree folder)."""
    for c in (os.environ.get("SPARROW_SHARED"), os.path.join(ROOT, "..", "shared"),
              os.path.join(ROOT, "..", "..", "shared")):
        if c and os.path.isdir(c):
            return c
    return os.path.join(ROOT, "..", "shared")


SHARED = _find_shared()
STORIES = os.path.join(SHARED, "models", "stories260K.bin")
TOK512 = os.path.join(SHARED, "models", "tok512.bin")
LLAMA2C = os.path.join(HERE, "llama2c.py")
HF = os.path.join(HERE, "hf_llama.py")

torch.set_num_threads(1)


def run(script, *args):
    p = subprocess.run([sys.executable, script] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


# -------------------------------------------------------------------------------------------------
# llama2.c files written by the tests


def llama2c_tokenizer(tokens, scores):
    out = [struct.pack("<i", max(len(t) for t in tokens))]
    for t, s in zip(tokens, scores):
        out.append(struct.pack("<fi", s, len(t)) + t)
    return b"".join(out)


def small_llama2c(rng, dim=16, hidden=40, layers=2, heads=4, kv=2, vocab=32, seq=16, shared=True, version=0):
    hd = dim // heads
    a = {"emb": rng.standard_normal((vocab, dim)), "rms_att": 1 + 0.1 * rng.standard_normal((layers, dim)),
         "wq": rng.standard_normal((layers, dim, dim)) * 0.3, "wk": rng.standard_normal((layers, kv * hd, dim)) * 0.3,
         "wv": rng.standard_normal((layers, kv * hd, dim)) * 0.3, "wo": rng.standard_normal((layers, dim, dim)) * 0.3,
         "rms_ffn": 1 + 0.1 * rng.standard_normal((layers, dim)),
         "w1": rng.standard_normal((layers, hidden, dim)) * 0.3, "w2": rng.standard_normal((layers, dim, hidden)) * 0.2,
         "w3": rng.standard_normal((layers, hidden, dim)) * 0.3, "rms_final": 1 + 0.1 * rng.standard_normal(dim),
         "freq_real": rng.standard_normal((seq, hd // 2)), "freq_imag": rng.standard_normal((seq, hd // 2)),
         "wcls": rng.standard_normal((vocab, dim))}
    a = {k: v.astype(np.float32) for k, v in a.items()}
    if version == 0:
        head = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab if shared else -vocab, seq)
        order = ["emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final", "freq_real",
                 "freq_imag"]
    else:
        head = struct.pack("<Ii7iB", 0x616B3432, 1, dim, hidden, layers, heads, kv, vocab, seq, int(shared))
        head += b"\0" * (256 - len(head))
        order = ["rms_att", "rms_ffn", "rms_final", "emb", "wq", "wk", "wv", "wo", "w1", "w2", "w3"]
    if not shared:
        order.append("wcls")
    return head + b"".join(a[k].tobytes() for k in order), a


def small_tok(vocab=32):
    toks = [b"<unk>", b"\n<s>\n", b"\n</s>\n", b"<0x0A>", b"<0x41>", b" ", b"a", b"b", b" a", b"ab", b" ab"]
    toks += [("t%d" % i).encode() for i in range(vocab - len(toks))]
    return toks, [0.0] * 5 + [-float(i) for i in range(vocab - 5)]


class TestLlama2c(unittest.TestCase):
    def setUp(self):
        self.td = tempfile.TemporaryDirectory()
        self.d = self.td.name

    def tearDown(self):
        self.td.cleanup()

    def write(self, name, data):
        p = os.path.join(self.d, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def convert(self, model, tok, *extra):
        out = os.path.join(self.d, "out.gguf")
        rc, msg = run(LLAMA2C, model, "--tokenizer", tok, "-o", out, "-q", *extra)
        return rc, msg, out

    def check_tensors(self, out, a, shared, f16=False):
        g = gguf.GGUFReader(out)
        L = g.kv["llama.block_count"]
        m = {"token_embd.weight": a["emb"], "output_norm.weight": a["rms_final"]}
        for i in range(L):
            p = "blk.%d." % i
            m.update({p + "attn_norm.weight": a["rms_att"][i], p + "attn_q.weight": a["wq"][i],
                      p + "attn_k.weight": a["wk"][i], p + "attn_v.weight": a["wv"][i],
                      p + "attn_output.weight": a["wo"][i], p + "ffn_norm.weight": a["rms_ffn"][i],
                      p + "ffn_gate.weight": a["w1"][i], p + "ffn_up.weight": a["w3"][i],
                      p + "ffn_down.weight": a["w2"][i]})
        if not shared:
            m["output.weight"] = a["wcls"]
        self.assertEqual(set(g.tensors), set(m))
        for n, want in m.items():
            t = g.tensors[n]
            self.assertEqual(t.shape, want.shape, n)
            exp_t = gguf.GGML_F16 if (f16 and want.ndim == 2) else gguf.GGML_F32
            self.assertEqual(t.type, exp_t, n)
            w2 = want.astype(np.float16).astype(np.float32) if exp_t == gguf.GGML_F16 else want
            np.testing.assert_array_equal(g.array(n), w2, err_msg=n)
        return g

    def test_legacy_shared_and_separate(self):
        rng = np.random.default_rng(1)
        toks, scores = small_tok()
        tp = self.write("tok.bin", llama2c_tokenizer(toks, scores))
        for shared in (True, False):
            data, a = small_llama2c(rng, shared=shared)
            rc, msg, out = self.convert(self.write("m.bin", data), tp)
            self.assertEqual(rc, 0, msg)
            g = self.check_tensors(out, a, shared)
            kv = g.kv
            self.assertEqual(kv["general.architecture"], "llama")
            want = {"llama.context_length": 16, "llama.embedding_length": 16, "llama.block_count": 2,
                    "llama.feed_forward_length": 40, "llama.rope.dimension_count": 4, "llama.attention.head_count": 4,
                    "llama.attention.head_count_kv": 2, "llama.vocab_size": 32, "tokenizer.ggml.model": "llama",
                    "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
                    "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.add_space_prefix": True}
            for k, v in want.items():
                self.assertEqual(kv[k], v, k)
            self.assertAlmostEqual(kv["llama.attention.layer_norm_rms_epsilon"], 1e-5, places=10)
            self.assertEqual(kv["llama.rope.freq_base"], 10000.0)
            self.assertEqual(kv["tokenizer.ggml.tokens"][:11],
                             ["<unk>", "<s>", "</s>", "<0x0A>", "<0x41>", "\u2581", "a", "b", "\u2581a", "ab", "\u2581ab"])
            self.assertEqual(kv["tokenizer.ggml.token_type"][:8], [2, 3, 3, 6, 6, 1, 1, 1])
            # the reference runs on it and its tokenizer merges as SentencePiece does
            t = Tokenizer(kv)
            self.assertEqual(t.encode("ab a\nA", bos=True), [1, 10, 8, 3, 4])
            self.assertEqual(t.decode([1, 10, 8, 3, 4]), "ab a\nA")
            LlamaRef(out).forward([1, 5, 6, 7])

    def test_version1_and_f16(self):
        rng = np.random.default_rng(2)
        toks, scores = small_tok()
        tp = self.write("tok.bin", llama2c_tokenizer(toks, scores))
        for shared in (True, False):
            data, a = small_llama2c(rng, shared=shared, version=1)
            rc, msg, out = self.convert(self.write("m1.bin", data), tp, "--type", "f16")
            self.assertEqual(rc, 0, msg)
            g = self.check_tensors(out, a, shared, f16=True)
            self.assertEqual(g.kv["general.file_type"], 1)

    def test_errors(self):
        rng = np.random.default_rng(3)
        toks, scores = small_tok()
        tp = self.write("tok.bin", llama2c_tokenizer(toks, scores))
        data, _ = small_llama2c(rng)
        cases = [
            ("short", data[:20], "truncated"),
            ("trunc", data[:-4], "truncated"),
            ("extra", data + b"\0" * 8, "after the last weight"),
            ("heads0", struct.pack("<7i", 16, 40, 2, 0, 2, 32, 16) + data[28:], "n_heads"),
            ("kv", struct.pack("<7i", 16, 40, 2, 4, 3, 32, 16) + data[28:], "n_kv_heads"),
            ("odd", struct.pack("<7i", 18, 40, 2, 6, 2, 32, 16) + data[28:], "even head size"),
            ("v2", struct.pack("<Ii", 0x616B3432, 2) + b"\0" * 300, "version 2"),
        ]
        for name, blob, want in cases:
            rc, msg, out = self.convert(self.write(name + ".bin", blob), tp)
            self.assertEqual(rc, 2, name)
            self.assertIn(want, msg, name)
            self.assertEqual(len(msg.strip().splitlines()), 1, msg)
        mp = self.write("ok.bin", data)
        tb = llama2c_tokenizer(toks, scores)
        for name, blob, want in [("tshort", tb[:-3], "token 31: bad length"), ("textra", tb + b"\0" * 4, "after 32"),
                                 ("thead", struct.pack("<i", -1) + tb[4:], "max_token_length"),
                                 ("tdup", llama2c_tokenizer(toks[:-1] + [b"ab"], scores), "both")]:
            rc, msg, out = self.convert(mp, self.write(name, blob))
            self.assertEqual(rc, 2, name)
            self.assertIn(want, msg, name)
        rc, msg, _ = self.convert(os.path.join(self.d, "missing.bin"), tp)
        self.assertEqual(rc, 2)
        self.assertIn("No such file", msg)

    @unittest.skipUnless(os.path.exists(STORIES), "needs ../shared/models/stories260K.bin")
    def test_stories260k_golden(self):
        t0 = time.time()
        rc, msg, out = self.convert(STORIES, TOK512)
        dt = time.time() - t0
        self.assertEqual(rc, 0, msg)
        self.assertLess(dt, 2.0, "llama2c.py must stay fast (took %.2f s)" % dt)
        g = gguf.GGUFReader(out)
        self.assertNotIn("output.weight", g.tensors)
        self.assertEqual(len(g.tensors), 2 + 9 * 5)
        gold = gguf.GGUFReader(os.path.join(ROOT, "tests", "fixtures", "llama", "stories260K.golden.gguf"))
        ids = lg.read_i32(gold, "tokens").tolist()
        m = LlamaRef(out)
        self.assertEqual(m.tok.decode(ids), gold.kv["golden.text"])
        L = m.forward(ids[:32]).numpy()
        np.testing.assert_allclose(L, gold.array("logits"), rtol=0, atol=1e-5)
        # greedy path: the argmax of each position is the next golden token
        self.assertEqual(np.argmax(L, axis=1).tolist(), ids[1:33])


# -------------------------------------------------------------------------------------------------
# Hugging Face


class TestHF(unittest.TestCase):
    def setUp(self):
        self.td = tempfile.TemporaryDirectory()
        self.d = self.td.name

    def tearDown(self):
        self.td.cleanup()

    def spm_json(self):
        tokens, scores, types = synthetic_vocab()
        return hfr.spm_tokenizer_json(tokens, scores, types)

    def convert(self, d, *extra):
        out = os.path.join(self.d, "out.gguf")
        rc, msg = run(HF, d, "-o", out, "-q", *extra)
        return rc, msg, out

    def check_forward(self, cfg, sd, dtype, out, atol=1e-9, toks=(1, 5, 20, 33, 40, 7, 63, 12, 0, 44)):
        want = hfr.hf_forward(hfr.stored_values(sd, dtype), cfg, list(toks)).numpy()
        have = LlamaRef(out).forward(list(toks)).numpy()
        np.testing.assert_allclose(have, want, rtol=0, atol=atol)

    def test_permute_roundtrip(self):
        w = np.arange(8 * 16 * 3, dtype=np.float32).reshape(8 * 16 // 8 * 8, 3)[:128].reshape(128, 3)
        for nh in (1, 2, 4, 8):
            p = lg.hf_permute(w, nh)
            np.testing.assert_array_equal(lg.hf_unpermute(p, nh), w)
        # head 0, hd 16: GGUF row 2i = HF row i, row 2i+1 = HF row i + 8
        p = lg.hf_permute(w, 8)
        np.testing.assert_array_equal(p[0], w[0])
        np.testing.assert_array_equal(p[1], w[8])
        np.testing.assert_array_equal(p[2], w[1])

    def test_gqa_untied_f32_tokenizer_json(self):
        cfg = hfr.hf_config(heads=4, kv_heads=2, tie=False)
        sd = hfr.random_state_dict(cfg, 11)
        d = os.path.join(self.d, "m")
        hfr.write_hf_dir(d, cfg, sd, "F32", tokenizer_json=self.spm_json(),
                         tokenizer_config={"add_bos_token": True, "add_eos_token": False})
        rc, msg, out = self.convert(d)
        self.assertEqual(rc, 0, msg)
        g = gguf.GGUFReader(out)
        self.assertIn("output.weight", g.tensors)
        self.assertEqual(g.kv["llama.attention.head_count_kv"], 2)
        self.check_forward(cfg, sd, "F32", out)
        # the converted vocab tokenizes exactly like the original synthetic vocab
        tokens, scores, types = synthetic_vocab()
        wref = gguf.GGUFWriter()
        lg.add_spm_tokenizer(wref, tokens, scores, types)
        ref = Tokenizer(gguf.GGUFReader(wref.to_bytes()).kv)
        conv = Tokenizer(g.kv)
        self.assertEqual(conv.tokens, tokens)
        self.assertEqual(conv.types[:63], types[:63])  # tokenizer.json cannot say "unused" (id 63)
        for s in ["the cat, hello!", "he is at the inn.", "hello world, caf\u00e9!", "  the  hell  ", "isis ing"]:
            self.assertEqual(conv.encode(s), ref.encode(s), s)

    def test_mqa_tied_bf16_sharded_sentencepiece_model(self):
        cfg = hfr.hf_config(heads=4, kv_heads=1, tie=True, theta=500000.0)
        sd = hfr.random_state_dict(cfg, 12)
        tokens, scores, types = synthetic_vocab()
        d = os.path.join(self.d, "m")
        hfr.write_hf_dir(d, cfg, sd, "BF16", shards=3, tokenizer_model=hfr.sentencepiece_model(tokens, scores, types))
        rc, msg, out = self.convert(d)
        self.assertEqual(rc, 0, msg)
        g = gguf.GGUFReader(out)
        self.assertNotIn("output.weight", g.tensors)
        self.assertEqual(g.kv["llama.rope.freq_base"], 500000.0)
        self.assertEqual(g.kv["tokenizer.ggml.tokens"], tokens)
        np.testing.assert_array_equal(np.float32(g.kv["tokenizer.ggml.scores"]), np.float32(scores))
        self.assertEqual(g.kv["tokenizer.ggml.token_type"], types)
        self.assertTrue(g.kv["tokenizer.ggml.add_space_prefix"])
        self.check_forward(cfg, sd, "BF16", out)

    def test_mha_f16_in_f16_out_and_padded_vocab(self):
        cfg = hfr.hf_config(vocab=70, heads=2, kv_heads=2, tie=False, hidden=32, ffn=48)
        sd = hfr.random_state_dict(cfg, 13)
        d = os.path.join(self.d, "m")
        hfr.write_hf_dir(d, cfg, sd, "F16", tokenizer_json=self.spm_json())
        rc, msg, out = self.convert(d, "--type", "f16")
        self.assertEqual(rc, 0, msg)
        g = gguf.GGUFReader(out)
        self.assertEqual(g.tensors["blk.0.attn_q.weight"].type, gguf.GGML_F16)
        self.assertEqual(g.tensors["blk.0.attn_norm.weight"].type, gguf.GGML_F32)
        self.assertEqual(len(g.kv["tokenizer.ggml.tokens"]), 70)
        self.assertEqual(g.kv["tokenizer.ggml.tokens"][64:66], ["[PAD64]", "[PAD65]"])
        self.assertEqual(g.kv["tokenizer.ggml.token_type"][69], 5)
        self.check_forward(cfg, sd, "F16", out, toks=(1, 2, 69, 3, 64))

    def test_gpt2_tokenizer(self):
        tj = hfr.gpt2_tokenizer_json(merges_as_lists=True)
        n = len(tj["model"]["vocab"])
        cfg = hfr.hf_config(vocab=n, heads=4, kv_heads=2, bos=n - 1, eos=n - 1)
        sd = hfr.random_state_dict(cfg, 14)
        d = os.path.join(self.d, "m")
        hfr.write_hf_dir(d, cfg, sd, "F32", tokenizer_json=tj)
        rc, msg, out = self.convert(d)
        self.assertEqual(rc, 0, msg)
        g = gguf.GGUFReader(out)
        kv = g.kv
        self.assertEqual(kv["tokenizer.ggml.model"], "gpt2")
        self.assertEqual(kv["tokenizer.ggml.pre"], "gpt-2")
        self.assertEqual(kv["tokenizer.ggml.merges"], ["%s %s" % tuple(m) for m in hfr.GPT2_MERGES])
        self.assertEqual(kv["tokenizer.ggml.token_type"][-1], 3)
        self.assertEqual(kv["tokenizer.ggml.bos_token_id"], n - 1)
        self.assertNotIn("tokenizer.ggml.scores", kv)
        t = Tokenizer(kv)
        ids = [kv["tokenizer.ggml.tokens"].index(s) for s in ["h", "ell", "o", "\u0120cat", "\u0120"]]
        self.assertEqual(t.decode(ids), "hello cat ")
        self.check_forward(cfg, sd, "F32", out, toks=(1, n - 1, 5, 270))
        # a non-GPT-2 pre-tokenizer needs --pre
        tj["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\d"}, "behavior": "Isolated"},
            {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}]}
        hfr.write_hf_dir(d, cfg, sd, "F32", tokenizer_json=tj)
        rc, msg, _ = self.convert(d)
        self.assertEqual(rc, 2)
        self.assertIn("--pre", msg)
        rc, msg, out = self.convert(d, "--pre", "smollm")
        self.assertEqual(rc, 0, msg)
        self.assertEqual(gguf.GGUFReader(out).kv["tokenizer.ggml.pre"], "smollm")

    def test_errors(self):
        cfg = hfr.hf_config()
        sd = hfr.random_state_dict(cfg, 15)
        tj = self.spm_json()

        def case(mut_cfg=None, mut_sd=None, tok=True, raw=None):
            d = tempfile.mkdtemp(dir=self.d)
            c = dict(cfg)
            s = dict(sd)
            if mut_cfg:
                mut_cfg(c)
            if mut_sd:
                mut_sd(s)
            hfr.write_hf_dir(d, c, s, "F32", tokenizer_json=tj if tok else None)
            if raw:
                with open(os.path.join(d, "model.safetensors"), "wb") as f:
                    f.write(raw)
            rc, msg, out = self.convert(d)
            self.assertFalse(os.path.exists(out + ".part"))
            return rc, msg

        checks = [
            (dict(mut_sd=lambda s: s.pop("model.layers.1.mlp.up_proj.weight")), "no tensor model.layers.1.mlp.up_proj"),
            (dict(mut_sd=lambda s: s.__setitem__("model.norm.weight", np.ones(3, np.float32))), "shape"),
            (dict(mut_sd=lambda s: s.__setitem__("model.layers.0.self_attn.q_proj.bias", np.ones(32, np.float32))),
             "does not map"),
            (dict(mut_cfg=lambda c: c.__setitem__("rope_scaling", {"type": "linear", "factor": 2.0})), "rope_scaling"),
            (dict(mut_cfg=lambda c: c.__setitem__("num_key_value_heads", 3)), "multiple"),
            (dict(mut_cfg=lambda c: c.__setitem__("model_type", "mistral")), "LlamaForCausalLM"),
            (dict(mut_cfg=lambda c: c.pop("hidden_size")), "hidden_size"),
            (dict(tok=False), "no tokenizer"),
            (dict(raw=struct.pack("<Q", 1 << 40)), "header length"),
            (dict(raw=struct.pack("<Q", 2) + b"{["), "bad safetensors header"),
        ]
        for kw, want in checks:
            rc, msg = case(**kw)
            self.assertEqual(rc, 2, (want, msg))
            self.assertIn(want, msg)
            self.assertEqual(len(msg.strip().splitlines()), 1, msg)
        # bad data offsets
        d = tempfile.mkdtemp(dir=self.d)
        hfr.write_hf_dir(d, cfg, sd, "F32", tokenizer_json=tj)
        p = os.path.join(d, "model.safetensors")
        with open(p, "rb") as f:
            buf = f.read()
        (n,) = struct.unpack("<Q", buf[:8])
        h = json.loads(buf[8:8 + n])
        h["model.norm.weight"]["data_offsets"][1] += 4
        hj = json.dumps(h).encode()
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", len(hj)) + hj + buf[8 + n:])
        rc, msg, _ = self.convert(d)
        self.assertEqual(rc, 2)
        self.assertIn("data_offsets", msg)


if __name__ == "__main__":
    unittest.main()
