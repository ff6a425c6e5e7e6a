"""Shared pieces of the llama-architecture converters (llama2c.py, hf_llama.py, the trainer and
the fixture/bench generators): hyper-parameter KVs, tokenizer KVs, tensor naming, the HF q/k
permutation, and a streaming GGUF writer for models too large to hold in memory.

GGUF conventions followed (llama.cpp, see docs/llm.md):
  general.architecture "llama"; llama.* hyper-parameters; tensors token_embd, blk.N.attn_norm,
  attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down, output_norm and an
  optional output (absent => tied to token_embd). A PyTorch [out, in] weight is written
  unchanged (ggml ne {in, out}). 1-D tensors (norms) are always F32; with --type f16 the 2-D
  weights are F16 (llama.cpp's MOSTLY_F16, general.file_type 1).
"""

import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402

# tokenizer.ggml.token_type values
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6

FILE_TYPE = {gguf.GGML_F32: 0, gguf.GGML_F16: 1}
TYPE_BY_NAME = {"f32": gguf.GGML_F32, "f16": gguf.GGML_F16}


class Hparams:
    """llama hyper-parameters. head_dim = n_embd / n_head (rope.dimension_count)."""

    def __init__(self, n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx, rms_eps=1e-5,
                 rope_base=10000.0, n_rot=None):
        self.n_vocab, self.n_embd, self.n_layer = int(n_vocab), int(n_embd), int(n_layer)
        self.n_head, self.n_head_kv, self.n_ff, self.n_ctx = int(n_head), int(n_head_kv), int(n_ff), int(n_ctx)
        self.rms_eps, self.rope_base = float(rms_eps), float(rope_base)
        self.head_dim = self.n_embd // self.n_head if self.n_head > 0 else 0
        self.n_rot = int(n_rot) if n_rot is not None else self.head_dim

    def validate(self, err=ValueError):
        for k in ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_ctx"):
            if getattr(self, k) <= 0:
                raise err("%s must be positive, got %d" % (k, getattr(self, k)))
        if self.n_embd % self.n_head:
            raise err("n_embd %d is not a multiple of n_head %d" % (self.n_embd, self.n_head))
        if self.n_head % self.n_head_kv:
            raise err("n_head %d is not a multiple of n_head_kv %d" % (self.n_head, self.n_head_kv))
        if self.head_dim % 2 or self.n_rot % 2 or self.n_rot > self.head_dim:
            raise err("head_dim %d / n_rot %d must be even with n_rot <= head_dim" % (self.head_dim, self.n_rot))
        if not (self.rms_eps > 0 and self.rope_base > 0):
            raise err("rms_eps and rope_base must be positive")

    def shapes(self, tied=True):
        """(name, numpy shape [out, in]) of every tensor in file order."""
        e, hd = self.n_embd, self.head_dim
        out = [("token_embd.weight", (self.n_vocab, e))]
        for i in range(self.n_layer):
            p = "blk.%d." % i
            out += [(p + "attn_norm.weight", (e,)),
                    (p + "attn_q.weight", (self.n_head * hd, e)),
                    (p + "attn_k.weight", (self.n_head_kv * hd, e)),
                    (p + "attn_v.weight", (self.n_head_kv * hd, e)),
                    (p + "attn_output.weight", (e, self.n_head * hd)),
                    (p + "ffn_norm.weight", (e,)),
                    (p + "ffn_gate.weight", (self.n_ff, e)),
                    (p + "ffn_up.weight", (self.n_ff, e)),
                    (p + "ffn_down.weight", (e, self.n_ff))]
        out.append(("output_norm.weight", (e,)))
        if not tied:
            out.append(("output.weight", (self.n_vocab, e)))
        return out

    def n_params(self, tied=True):
        return sum(int(np.prod(s)) for _, s in self.shapes(tied))


def add_hparams(w, hp, name=None, file_type=None):
    """general.* and llama.* KVs on a gguf.GGUFWriter (or StreamingWriter)."""
    w.add_string("general.architecture", "llama")
    if name:
        w.add_string("general.name", name)
    if file_type is not None:
        w.add_u32("general.file_type", file_type)
    w.add_u32("llama.context_length", hp.n_ctx)
    w.add_u32("llama.embedding_length", hp.n_embd)
    w.add_u32("llama.block_count", hp.n_layer)
    w.add_u32("llama.feed_forward_length", hp.n_ff)
    w.add_u32("llama.rope.dimension_count", hp.n_rot)
    w.add_u32("llama.attention.head_count", hp.n_head)
    w.add_u32("llama.attention.head_count_kv", hp.n_head_kv)
    w.add_f32("llama.attention.layer_norm_rms_epsilon", hp.rms_eps)
    w.add_f32("llama.rope.freq_base", hp.rope_base)
    w.add_u32("llama.vocab_size", hp.n_vocab)


def add_spm_tokenizer(w, tokens, scores, types, bos=1, eos=2, unk=0, pad=None, add_bos=True, add_eos=False,
                      add_space_prefix=True):
    """tokenizer.ggml.model "llama" (SentencePiece-style: U+2581 for spaces, <0xXX> byte tokens)."""
    if not (len(tokens) == len(scores) == len(types)):
        raise ValueError("tokens/scores/types lengths differ")
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", tokens, gguf.GGUF_STRING)
    w.add_array("tokenizer.ggml.scores", [float(s) for s in scores], gguf.GGUF_F32)
    w.add_array("tokenizer.ggml.token_type", [int(t) for t in types], gguf.GGUF_I32)
    for key, v in (("bos", bos), ("eos", eos), ("unknown", unk), ("padding", pad)):
        if v is not None:
            w.add_u32("tokenizer.ggml.%s_token_id" % key, v)
    w.add_bool("tokenizer.ggml.add_bos_token", add_bos)
    w.add_bool("tokenizer.ggml.add_eos_token", add_eos)
    w.add_bool("tokenizer.ggml.add_space_prefix", add_space_prefix)


def add_bpe_tokenizer(w, tokens, merges, types, bos=None, eos=None, unk=None, pad=None, pre="gpt-2",
                      add_bos=False):
    """tokenizer.ggml.model "gpt2" (byte-level BPE: tokens in GPT-2 byte-to-unicode form)."""
    if len(tokens) != len(types):
        raise ValueError("tokens/types lengths differ")
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", pre)
    w.add_array("tokenizer.ggml.tokens", tokens, gguf.GGUF_STRING)
    w.add_array("tokenizer.ggml.token_type", [int(t) for t in types], gguf.GGUF_I32)
    w.add_array("tokenizer.ggml.merges", merges, gguf.GGUF_STRING)
    for key, v in (("bos", bos), ("eos", eos), ("unknown", unk), ("padding", pad)):
        if v is not None:
            w.add_u32("tokenizer.ggml.%s_token_id" % key, v)
    w.add_bool("tokenizer.ggml.add_bos_token", add_bos)


def copy_tokenizer_kvs(w, reader):
    """Copy every tokenizer.* KV of a gguf.GGUFReader onto a writer, types preserved."""
    for k, v in reader.kv.items():
        if not k.startswith("tokenizer."):
            continue
        t = reader.kv_type[k]
        if isinstance(t, tuple):
            w.add_array(k, v, t[1])
        else:
            w.add_kv(k, t, v)


def tensor_type_for(name, shape, wtype):
    """Norms (1-D) stay F32; 2-D weights get wtype."""
    return gguf.GGML_F32 if len(shape) == 1 else wtype


def hf_permute(w, n_head, n_head_kv=None):
    """llama.cpp's convert_hf_to_gguf LlamaModel.permute: HF q/k rows are ordered for rotate_half
    RoPE (pair i = rows i and i + hd/2 of each head); reorder them so pair i is rows 2i, 2i+1.
    reshape (n_head, 2, hd/2, ...) and swap axes 1 and 2."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def hf_unpermute(w, n_head):
    """Inverse of hf_permute (GGUF adjacent-pair order back to HF rotate_half order)."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


# -------------------------------------------------------------------------------------------------
# Streaming writer: the header is written first from (name, ne, type) only, then the tensor data
# one tensor at a time, so a multi-GB model never has to be in memory.


def _nbytes(ne, gtype):
    _, blck, bsize = gguf.GGML_TYPES[gtype]
    if ne[0] % blck:
        raise gguf.GGUFError("ne[0] %d is not a multiple of the block size %d" % (ne[0], blck))
    return int(np.prod(ne, dtype=np.int64)) // blck * bsize


class StreamingWriter:
    """Same KV API as gguf.GGUFWriter (it reuses one internally for the KVs), but tensors are
    declared first (declare_tensor) and their data is written afterwards in declaration order
    (write_tensor_data) to an open file."""

    def __init__(self, path, alignment=gguf.GGUF_DEFAULT_ALIGNMENT):
        self._kvw = gguf.GGUFWriter(alignment)
        self.alignment = alignment
        self.path = path
        self.decl = []  # (name, ne, type, nbytes)
        self._f = None
        self._next = 0

    def __getattr__(self, attr):  # add_u32, add_string, add_array, add_kv, ...
        if attr.startswith("add_"):
            return getattr(self._kvw, attr)
        raise AttributeError(attr)

    def declare_tensor(self, name, shape, gtype):
        ne = tuple(int(d) for d in reversed(shape))
        self.decl.append((name, ne, gtype, _nbytes(ne, gtype)))

    def begin(self):
        a = self.alignment
        # header = the KV writer's bytes without tensors, then the tensor table
        kvw = self._kvw
        out = [gguf.GGUF_MAGIC, struct.pack("<IQQ", gguf.GGUF_VERSION, len(self.decl), len(kvw.kv))]
        for key, (vtype, value) in kvw.kv.items():
            out += [gguf._pack_string(key), struct.pack("<I", vtype), gguf._pack_value(vtype, value)]
        off = 0
        for name, ne, gt, nb in self.decl:
            out += [gguf._pack_string(name), struct.pack("<I", len(ne)), struct.pack("<%dQ" % len(ne), *ne),
                    struct.pack("<IQ", gt, off)]
            off += (nb + a - 1) // a * a
        head = b"".join(out)
        self._f = open(self.path, "wb")
        self._f.write(head + b"\x00" * ((-len(head)) % a))

    def write_tensor_data(self, name, raw):
        """raw: bytes (already in the declared ggml type) of the next declared tensor."""
        dn, ne, gt, nb = self.decl[self._next]
        if dn != name:
            raise gguf.GGUFError("tensor %s written out of order (expected %s)" % (name, dn))
        if len(raw) != nb:
            raise gguf.GGUFError("tensor %s: %d bytes, expected %d" % (name, len(raw), nb))
        self._f.write(raw)
        self._f.write(b"\x00" * ((-nb) % self.alignment))
        self._next += 1

    def finish(self):
        if self._next != len(self.decl):
            raise gguf.GGUFError("%d of %d tensors written" % (self._next, len(self.decl)))
        self._f.close()
        return os.path.getsize(self.path)


def to_raw(a, gtype):
    """numpy array -> little-endian bytes of an F32/F16 tensor."""
    if gtype == gguf.GGML_F32:
        return np.ascontiguousarray(a, dtype="<f4").tobytes()
    if gtype == gguf.GGML_F16:
        return np.ascontiguousarray(a, dtype="<f2").tobytes()
    raise gguf.GGUFError("to_raw: unsupported type %r" % gtype)


# -------------------------------------------------------------------------------------------------
# Q8_0 / Q4_0 block quantizers (ggml reference quantize_row_q8_0 / q4_0: d = amax/127 resp.
# max/-8 with the signed value of largest magnitude); used only to make test fixtures.


def quantize_q8_0(a):
    x = np.asarray(a, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = amax / 127.0
    idd = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = _round_away(x * idd[:, None]).astype(np.int8)  # ggml roundf: half away from zero
    out = np.empty((x.shape[0], 34), np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def quantize_q4_0(a):
    x = np.asarray(a, dtype=np.float32).reshape(-1, 32)
    idx = np.abs(x).argmax(axis=1)
    mx = x[np.arange(x.shape[0]), idx]
    d = mx / -8.0
    idd = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.minimum(15, (x * idd[:, None] + 8.5).astype(np.int8)).astype(np.uint8)  # trunc as ggml
    out = np.empty((x.shape[0], 18), np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def add_raw_tensor(w, name, shape, gtype, raw):
    """Add pre-encoded tensor bytes (e.g. Q8_0 blocks) to a gguf.GGUFWriter, which itself only
    converts to F32/F16/BF16. Same checks as GGUFWriter.add_tensor."""
    ne = tuple(int(d) for d in reversed(shape))
    if name in w.tensors:
        raise gguf.GGUFError("duplicate tensor %s" % name)
    if len(raw) != _nbytes(ne, gtype):
        raise gguf.GGUFError("tensor %s: %d bytes for ne %s" % (name, len(raw), list(ne)))
    w.tensors[name] = (gtype, ne, bytes(raw))


def _round_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


# -------------------------------------------------------------------------------------------------
# Integer tensors. tools/convert/gguf.py (not ours) only knows float tensor types; golden files
# store token ids as an I32 tensor (ggml type 26). These helpers write and read them without
# changing gguf.py: the type is registered in its table at import so its reader accepts it.

GGML_I32 = 26
gguf.GGML_TYPES.setdefault(GGML_I32, ("I32", 1, 4))


def add_i32_tensor(w, name, values):
    a = np.asarray(values)
    if a.ndim != 1 or not np.all((a >= -2**31) & (a < 2**31)):
        raise gguf.GGUFError("tensor %s: need a 1-D int32 range array" % name)
    add_raw_tensor(w, name, a.shape, GGML_I32, a.astype("<i4").tobytes())


def read_i32(reader, name):
    t = reader.tensors[name]
    if t.type != GGML_I32:
        raise gguf.GGUFError("tensor %s is %s, not I32" % (name, t.type_name))
    return t.data.view("<i4").reshape(t.shape).astype(np.int64)
