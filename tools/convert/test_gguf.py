"""Tests for tools/convert/gguf.py: run with
    /usr/bin/python3 -m unittest discover -s tools/convert -p 'test_*.py'
"""

import os
import struct
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402


class TestWriterBytes(unittest.TestCase):
    def test_exact_layout_of_a_tiny_file(self):
        w = gguf.GGUFWriter()
        w.add_u32("a", 7)
        w.add_tensor("t", np.array([1.0, 2.0, 3.0], np.float32))
        w.add_tensor("u", np.array([[1, 2]], np.float32))  # ne {2,1}
        b = w.to_bytes()
        want = b"GGUF" + struct.pack("<IQQ", 3, 2, 1)
        want += struct.pack("<Q", 1) + b"a" + struct.pack("<II", 4, 7)
        want += struct.pack("<Q", 1) + b"t" + struct.pack("<IQIQ", 1, 3, 0, 0)
        want += struct.pack("<Q", 1) + b"u" + struct.pack("<IQQIQ", 2, 2, 1, 0, 32)  # 12 bytes padded to 32
        want += b"\0" * (-len(want) % 32)
        want += struct.pack("<3f", 1, 2, 3) + b"\0" * 20 + struct.pack("<2f", 1, 2) + b"\0" * 24
        self.assertEqual(b, want)

    def test_custom_alignment_is_written_and_used(self):
        w = gguf.GGUFWriter(alignment=64)
        w.add_tensor("x", np.zeros(3, np.float32))
        w.add_tensor("y", np.zeros(3, np.float32))
        r = gguf.GGUFReader(w.to_bytes())
        self.assertEqual(r.alignment, 64)
        self.assertEqual(r.kv_type["general.alignment"], gguf.GGUF_U32)
        self.assertEqual(r.tensors["y"].offset, 64)
        self.assertEqual(r.data_start % 64, 0)
        with self.assertRaises(gguf.GGUFError):
            gguf.GGUFWriter(alignment=48)


class TestRoundTrip(unittest.TestCase):
    def test_all_metadata_types(self):
        w = gguf.GGUFWriter()
        vals = [("u8", gguf.GGUF_U8, 255), ("i8", gguf.GGUF_I8, -128), ("u16", gguf.GGUF_U16, 65535),
                ("i16", gguf.GGUF_I16, -32768), ("u32", gguf.GGUF_U32, 2**32 - 1), ("i32", gguf.GGUF_I32, -2**31),
                ("u64", gguf.GGUF_U64, 2**64 - 1), ("i64", gguf.GGUF_I64, -2**63), ("f32", gguf.GGUF_F32, 0.5),
                ("f64", gguf.GGUF_F64, 1e-300), ("b", gguf.GGUF_BOOL, True), ("s", gguf.GGUF_STRING, "h\u00e9llo")]
        for k, t, v in vals:
            w.add_kv(k, t, v)
        w.add_array("arr.f32", [0.25, -1.5], gguf.GGUF_F32)
        w.add_array("arr.str", ["T-shirt/top", "", "Ankle boot"], gguf.GGUF_STRING)
        w.add_array("arr.bool", [True, False], gguf.GGUF_BOOL)
        w.add_array("arr.nested", [(gguf.GGUF_I32, [1, 2]), (gguf.GGUF_I32, [3])], gguf.GGUF_ARRAY)
        w.add_array("arr.empty", [], gguf.GGUF_U32)
        r = gguf.GGUFReader(w.to_bytes())
        for k, t, v in vals:
            self.assertEqual(r.kv_type[k], t, k)
            self.assertEqual(r.kv[k], v, k)
        self.assertEqual(r.kv["arr.f32"], [0.25, -1.5])
        self.assertEqual(r.kv_type["arr.f32"], (gguf.GGUF_ARRAY, gguf.GGUF_F32))
        self.assertEqual(r.kv["arr.str"], ["T-shirt/top", "", "Ankle boot"])
        self.assertEqual(r.kv["arr.bool"], [True, False])
        self.assertEqual(r.kv["arr.nested"], [[1, 2], [3]])
        self.assertEqual(r.kv["arr.empty"], [])

    def test_tensors_f32_f16_bf16(self):
        rng = np.random.default_rng(0)
        a = rng.standard_normal((3, 5, 7)).astype(np.float32)
        w = gguf.GGUFWriter()
        w.add_tensor("a32", a)
        w.add_tensor("a16", a, gguf.GGML_F16)
        w.add_tensor("abf", a, gguf.GGML_BF16)
        w.add_tensor("logits", np.arange(4, dtype=np.float32).reshape(1, 4))
        r = gguf.GGUFReader(w.to_bytes())
        self.assertEqual(r.tensors["a32"].ne, (7, 5, 3))
        np.testing.assert_array_equal(r.array("a32"), a)
        np.testing.assert_array_equal(r.array("a16"), a.astype(np.float16).astype(np.float32))
        np.testing.assert_allclose(r.array("abf"), a, rtol=1 / 128)
        self.assertEqual(r.tensors["logits"].ne, (4, 1))
        # data laid out in table order, each padded to the alignment, no gaps
        off = 0
        for t in r.tensors.values():
            self.assertEqual(t.offset, off)
            off += -(-t.data.nbytes // 32) * 32

    def test_quantized_read(self):
        # hand-made Q8_0 and Q4_0 blocks (ggml layout: f16 scale then quants)
        d = np.float16(0.5).tobytes()
        q8 = d + np.arange(-16, 16, dtype=np.int8).tobytes()
        qs = bytes((j & 0xF) | ((15 - (j & 0xF)) << 4) for j in range(16))
        q4 = d + qs
        raw = bytearray(b"GGUF" + struct.pack("<IQQ", 3, 2, 0))
        raw += struct.pack("<Q", 2) + b"q8" + struct.pack("<IQIQ", 1, 32, gguf.GGML_Q8_0, 0)
        raw += struct.pack("<Q", 2) + b"q4" + struct.pack("<IQIQ", 1, 32, gguf.GGML_Q4_0, 64)
        raw += b"\0" * (-len(raw) % 32)
        raw += q8 + b"\0" * 30 + q4
        r = gguf.GGUFReader(bytes(raw))
        np.testing.assert_array_equal(r.array("q8"), np.arange(-16, 16) * 0.5)
        want4 = np.concatenate([np.arange(16) - 8, 15 - np.arange(16) - 8]) * 0.5
        np.testing.assert_array_equal(r.array("q4"), want4)


class TestErrors(unittest.TestCase):
    def test_writer_rejects_bad_input(self):
        w = gguf.GGUFWriter()
        with self.assertRaises(gguf.GGUFError):
            w.add_u8("x", 256)
        with self.assertRaises(gguf.GGUFError):
            w.add_u32("x", -1)
        with self.assertRaises(gguf.GGUFError):
            w.add_i32("x", 1.5)
        w.add_u32("k", 1)
        with self.assertRaises(gguf.GGUFError):
            w.add_u32("k", 2)
        with self.assertRaises(gguf.GGUFError):
            w.add_tensor("n" * 65, np.zeros(1, np.float32))
        with self.assertRaises(gguf.GGUFError):
            w.add_tensor("big", np.full(2, 1e6), gguf.GGML_F16)
        with self.assertRaises(gguf.GGUFError):
            w.add_tensor("q", np.zeros(32), gguf.GGML_Q8_0)
        with self.assertRaises(gguf.GGUFError):
            w.add_tensor("five", np.zeros((1, 1, 1, 1, 2)))

    def test_reader_rejects_bad_files(self):
        w = gguf.GGUFWriter()
        w.add_tensor("t", np.zeros(8, np.float32))
        good = w.to_bytes()
        gguf.GGUFReader(good)
        for bad in (b"GGUX" + good[4:], good[:4] + struct.pack("<I", 1) + good[8:], good[:-1], good[:30]):
            with self.assertRaises(gguf.GGUFError):
                gguf.GGUFReader(bad)


if __name__ == "__main__":
    unittest.main()
