"""Minimal GGUF v3 reader and writer (numpy only).

Format (little-endian): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
kv_count x (string key, u32 type, value), tensor_count x (string name, u32 n_dims,
u64 ne[n_dims] (ne[0] fastest), u32 ggml_type, u64 offset), zero padding to the
alignment, then the tensor data in table order, each tensor padded to the alignment.
string = u64 length + UTF-8 bytes. Alignment = general.alignment (u32) or 32.

Shapes: this module speaks numpy shapes, which are ggml's ne reversed. A PyTorch
[out, in] Linear weight is written as-is and gets ne {in, out}; read back it is an
[out, in] array again.

Writer:
    w = GGUFWriter()
    w.add_string("general.architecture", "vit")
    w.add_u32("vit.block_count", 12)
    w.add_array("vit.image_mean", [0.5, 0.5, 0.5], GGUF_F32)
    w.add_tensor("head.weight", np_array, GGML_F16)     # converts to the given type
    w.write("model.gguf")
Reader:
    g = GGUFReader("model.gguf")
    g.kv["vit.block_count"]; g.kv_type["vit.block_count"] == GGUF_U32
    g.tensors["head.weight"].ne, .type ; g.array("head.weight") -> float32 numpy array
"""

import struct
from collections import OrderedDict

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
GGUF_DEFAULT_ALIGNMENT = 32

# metadata value types
GGUF_U8, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, \
    GGUF_U64, GGUF_I64, GGUF_F64 = range(13)

_SCALAR = {  # type -> (struct code, size)
    GGUF_U8: ("<B", 1), GGUF_I8: ("<b", 1), GGUF_U16: ("<H", 2), GGUF_I16: ("<h", 2),
    GGUF_U32: ("<I", 4), GGUF_I32: ("<i", 4), GGUF_F32: ("<f", 4), GGUF_BOOL: ("<?", 1),
    GGUF_U64: ("<Q", 8), GGUF_I64: ("<q", 8), GGUF_F64: ("<d", 8),
}
_INT_RANGE = {
    GGUF_U8: (0, 2**8 - 1), GGUF_I8: (-2**7, 2**7 - 1), GGUF_U16: (0, 2**16 - 1), GGUF_I16: (-2**15, 2**15 - 1),
    GGUF_U32: (0, 2**32 - 1), GGUF_I32: (-2**31, 2**31 - 1), GGUF_U64: (0, 2**64 - 1), GGUF_I64: (-2**63, 2**63 - 1),
}
TYPE_NAMES = {GGUF_U8: "u8", GGUF_I8: "i8", GGUF_U16: "u16", GGUF_I16: "i16", GGUF_U32: "u32", GGUF_I32: "i32",
              GGUF_F32: "f32", GGUF_BOOL: "bool", GGUF_STRING: "str", GGUF_ARRAY: "arr", GGUF_U64: "u64",
              GGUF_I64: "i64", GGUF_F64: "f64"}

# ggml tensor types: id -> (name, block size in elements, bytes per block)
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_BF16 = 0, 1, 2, 8, 30
GGML_TYPES = {
    GGML_F32: ("F32", 1, 4),
    GGML_F16: ("F16", 1, 2),
    GGML_Q4_0: ("Q4_0", 32, 18),
    GGML_Q8_0: ("Q8_0", 32, 34),
    GGML_BF16: ("BF16", 1, 2),
}
GGML_WRITABLE = (GGML_F32, GGML_F16)
MAX_DIMS = 4


class GGUFError(ValueError):
    pass


def _align(n, a):
    return (n + a - 1) // a * a


def _pack_string(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def _pack_scalar(vtype, v):
    code, _ = _SCALAR[vtype]
    if vtype in _INT_RANGE:
        if isinstance(v, (bool, np.bool_)) or int(v) != v:
            raise GGUFError("value %r is not an integer" % (v,))
        lo, hi = _INT_RANGE[vtype]
        if not lo <= int(v) <= hi:
            raise GGUFError("value %r is out of range for %s" % (v, TYPE_NAMES[vtype]))
        return struct.pack(code, int(v))
    if vtype == GGUF_BOOL:
        return struct.pack(code, bool(v))
    return struct.pack(code, float(v))


def _pack_value(vtype, value):
    if vtype == GGUF_STRING:
        return _pack_string(value)
    if vtype == GGUF_ARRAY:
        elem_type, items = value
        items = list(items)
        out = [struct.pack("<IQ", elem_type, len(items))]
        out += [_pack_value(elem_type, it) for it in items]
        return b"".join(out)
    if vtype not in _SCALAR:
        raise GGUFError("unknown metadata type %r" % (vtype,))
    return _pack_scalar(vtype, value)


def _f32_to_bf16_bits(a):
    """Round-to-nearest-even f32 -> bf16 bit patterns (uint16)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    r = ((u >> 16) & 1) + 0x7FFF
    bits = ((u + r) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    bits[nan] = 0x7FC0
    return bits


class GGUFWriter:
    """Collects metadata and tensors in order, then writes one GGUF v3 file."""

    def __init__(self, alignment=GGUF_DEFAULT_ALIGNMENT):
        if alignment < 8 or alignment % 8 or alignment & (alignment - 1):
            raise GGUFError("alignment must be a power of two >= 8, got %r" % (alignment,))
        self.alignment = alignment
        self.kv = OrderedDict()  # key -> (type, value)
        self.tensors = OrderedDict()  # name -> (ggml type, ne tuple, raw bytes)
        if alignment != GGUF_DEFAULT_ALIGNMENT:
            self.add_u32("general.alignment", alignment)

    # -- metadata ------------------------------------------------------------------------------

    def add_kv(self, key, vtype, value):
        if not key or len(key.encode("utf-8")) > 65535:
            raise GGUFError("bad metadata key %r" % (key,))
        if key in self.kv:
            raise GGUFError("duplicate metadata key %s" % key)
        _pack_value(vtype, value)  # validate now, so the error names the key's caller
        self.kv[key] = (vtype, value)

    def add_u8(self, k, v): self.add_kv(k, GGUF_U8, v)
    def add_i8(self, k, v): self.add_kv(k, GGUF_I8, v)
    def add_u16(self, k, v): self.add_kv(k, GGUF_U16, v)
    def add_i16(self, k, v): self.add_kv(k, GGUF_I16, v)
    def add_u32(self, k, v): self.add_kv(k, GGUF_U32, v)
    def add_i32(self, k, v): self.add_kv(k, GGUF_I32, v)
    def add_u64(self, k, v): self.add_kv(k, GGUF_U64, v)
    def add_i64(self, k, v): self.add_kv(k, GGUF_I64, v)
    def add_f32(self, k, v): self.add_kv(k, GGUF_F32, v)
    def add_f64(self, k, v): self.add_kv(k, GGUF_F64, v)
    def add_bool(self, k, v): self.add_kv(k, GGUF_BOOL, v)
    def add_string(self, k, v): self.add_kv(k, GGUF_STRING, v)

    def add_array(self, key, values, elem_type):
        """Array of elem_type; elem_type GGUF_ARRAY takes (inner_type, items) pairs (nesting)."""
        self.add_kv(key, GGUF_ARRAY, (elem_type, list(values)))

    # -- tensors -------------------------------------------------------------------------------

    def add_tensor(self, name, array, ggml_type=GGML_F32, ne=None):
        """Add a tensor. array: numpy array in numpy (row-major) shape; ne defaults to its shape
        reversed. ggml_type: GGML_F32 or GGML_F16 (the data is converted)."""
        nb = len(name.encode("utf-8"))
        if nb == 0 or nb > 64:
            raise GGUFError("tensor name %r must be 1..64 bytes" % (name,))
        if name in self.tensors:
            raise GGUFError("duplicate tensor %s" % name)
        a = np.asarray(array)
        if ne is None:
            ne = tuple(int(d) for d in reversed(a.shape)) or (1,)
        ne = tuple(int(d) for d in ne)
        if not 1 <= len(ne) <= MAX_DIMS or any(d < 1 for d in ne):
            raise GGUFError("tensor %s: bad ne %s" % (name, ne))
        if int(np.prod(ne)) != a.size:
            raise GGUFError("tensor %s: ne %s does not match %d elements" % (name, ne, a.size))
        if ggml_type == GGML_F32:
            raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        elif ggml_type == GGML_F16:
            af = np.asarray(a, dtype=np.float64)
            if np.isfinite(af).all() and np.abs(af).max(initial=0) > 65504:
                raise GGUFError("tensor %s: values exceed the f16 range" % name)
            raw = np.ascontiguousarray(a, dtype="<f2").tobytes()
        elif ggml_type == GGML_BF16:
            raw = _f32_to_bf16_bits(np.asarray(a, dtype=np.float32)).astype("<u2").tobytes()
        else:
            raise GGUFError("tensor %s: writing ggml type %r is not supported" % (name, ggml_type))
        self.tensors[name] = (ggml_type, ne, raw)

    # -- output --------------------------------------------------------------------------------

    def to_bytes(self):
        out = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kv))]
        for key, (vtype, value) in self.kv.items():
            out += [_pack_string(key), struct.pack("<I", vtype), _pack_value(vtype, value)]
        offset = 0
        for name, (gt, ne, raw) in self.tensors.items():
            out += [_pack_string(name), struct.pack("<I", len(ne)), struct.pack("<%dQ" % len(ne), *ne),
                    struct.pack("<IQ", gt, offset)]
            offset += _align(len(raw), self.alignment)
        head = b"".join(out)
        parts = [head, b"\x00" * (_align(len(head), self.alignment) - len(head))]
        for gt, ne, raw in self.tensors.values():
            parts += [raw, b"\x00" * (_align(len(raw), self.alignment) - len(raw))]
        return b"".join(parts)

    def write(self, path):
        data = self.to_bytes()
        with open(path, "wb") as f:
            f.write(data)
        return len(data)


class TensorInfo:
    __slots__ = ("name", "ne", "type", "offset", "data")

    def __init__(self, name, ne, gtype, offset, data):
        self.name, self.ne, self.type, self.offset, self.data = name, ne, gtype, offset, data

    @property
    def shape(self):
        """numpy shape (ne reversed)."""
        return tuple(reversed(self.ne))

    @property
    def type_name(self):
        return GGML_TYPES.get(self.type, ("type%d" % self.type,))[0]

    def __repr__(self):
        return "TensorInfo(%s, ne=%s, %s)" % (self.name, list(self.ne), self.type_name)


class _Cursor:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.buf):
            raise GGUFError("truncated file (need %d bytes at offset %d of %d)" % (n, self.pos, len(self.buf)))
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, code, size):
        return struct.unpack(code, self.take(size))[0]

    def string(self):
        n = self.unpack("<Q", 8)
        return bytes(self.take(n)).decode("utf-8")


class GGUFReader:
    """Parses a whole GGUF file (v2 or v3) into kv / kv_type / tensors; data are numpy views."""

    def __init__(self, path_or_bytes):
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            buf = bytes(path_or_bytes)
            self.path = "<bytes>"
        else:
            with open(path_or_bytes, "rb") as f:
                buf = f.read()
            self.path = str(path_or_bytes)
        self.buf = buf
        c = _Cursor(buf)
        if bytes(c.take(4)) != GGUF_MAGIC:
            raise GGUFError("%s: not a GGUF file (bad magic)" % self.path)
        self.version = c.unpack("<I", 4)
        if self.version not in (2, 3):
            raise GGUFError("%s: unsupported GGUF version %d" % (self.path, self.version))
        n_tensors, n_kv = c.unpack("<Q", 8), c.unpack("<Q", 8)
        if n_tensors > len(buf) or n_kv > len(buf):
            raise GGUFError("%s: implausible counts (%d tensors, %d kv)" % (self.path, n_tensors, n_kv))
        self.kv, self.kv_type = OrderedDict(), OrderedDict()
        for _ in range(n_kv):
            key = c.string()
            vtype = c.unpack("<I", 4)
            if key in self.kv:
                raise GGUFError("%s: duplicate key %s" % (self.path, key))
            self.kv_type[key], self.kv[key] = self._read_value(c, vtype, key)
        self.alignment = GGUF_DEFAULT_ALIGNMENT
        if "general.alignment" in self.kv:
            a = self.kv["general.alignment"]
            if self.kv_type["general.alignment"] != GGUF_U32 or a < 8 or a % 8 or a & (a - 1):
                raise GGUFError("%s: bad general.alignment %r" % (self.path, a))
            self.alignment = a
        infos = []
        for _ in range(n_tensors):
            name = c.string()
            nd = c.unpack("<I", 4)
            if not 1 <= nd <= MAX_DIMS:
                raise GGUFError("%s: tensor %s has %d dims" % (self.path, name, nd))
            ne = tuple(c.unpack("<Q", 8) for _ in range(nd))
            gtype, off = c.unpack("<I", 4), c.unpack("<Q", 8)
            infos.append((name, ne, gtype, off))
        self.data_start = _align(c.pos, self.alignment)
        self.tensors = OrderedDict()
        for name, ne, gtype, off in infos:
            if name in self.tensors:
                raise GGUFError("%s: duplicate tensor %s" % (self.path, name))
            if gtype not in GGML_TYPES:
                raise GGUFError("%s: tensor %s has unsupported ggml type %d" % (self.path, name, gtype))
            _, blck, bsize = GGML_TYPES[gtype]
            if any(d < 1 for d in ne) or ne[0] % blck:
                raise GGUFError("%s: tensor %s has bad ne %s for its type" % (self.path, name, list(ne)))
            nbytes = int(np.prod(ne, dtype=object)) // blck * bsize
            if off % self.alignment:
                raise GGUFError("%s: tensor %s offset %d is not aligned" % (self.path, name, off))
            start = self.data_start + off
            if start + nbytes > len(buf):
                raise GGUFError("%s: tensor %s data runs past the end of the file" % (self.path, name))
            raw = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=start)
            self.tensors[name] = TensorInfo(name, ne, gtype, off, raw)

    def _read_value(self, c, vtype, key):
        if vtype == GGUF_STRING:
            return vtype, c.string()
        if vtype == GGUF_ARRAY:
            et, n = c.unpack("<I", 4), c.unpack("<Q", 8)
            if n > len(self.buf):
                raise GGUFError("%s: key %s: implausible array length %d" % (self.path, key, n))
            if et in _SCALAR and et != GGUF_BOOL:
                code, size = _SCALAR[et]
                vals = np.frombuffer(bytes(c.take(size * n)), dtype="<" + code[1]).tolist()
                return (GGUF_ARRAY, et), vals
            items = []
            inner_t = None
            for _ in range(n):
                inner_t, v = self._read_value(c, et, key)
                items.append(v)
            return (GGUF_ARRAY, inner_t if et == GGUF_ARRAY else et), items
        if vtype in _SCALAR:
            code, size = _SCALAR[vtype]
            return vtype, c.unpack(code, size)
        raise GGUFError("%s: key %s has unknown type %d" % (self.path, key, vtype))

    def array(self, name, dtype=np.float32):
        """Tensor data as a numpy array of shape reversed(ne), dequantized to dtype."""
        if name not in self.tensors:
            raise KeyError("tensor %s is not in %s" % (name, self.path))
        t = self.tensors[name]
        shape = t.shape
        if t.type == GGML_F32:
            a = t.data.view("<f4")
        elif t.type == GGML_F16:
            a = t.data.view("<f2")
        elif t.type == GGML_BF16:
            a = (t.data.view("<u2").astype(np.uint32) << 16).view(np.float32)
        elif t.type == GGML_Q8_0:
            blk = t.data.reshape(-1, 34)
            d = blk[:, :2].copy().view("<f2").astype(np.float32)
            q = blk[:, 2:].copy().view(np.int8).astype(np.float32)
            a = q * d
        elif t.type == GGML_Q4_0:
            blk = t.data.reshape(-1, 18)
            d = blk[:, :2].copy().view("<f2").astype(np.float32)
            qs = blk[:, 2:]
            lo = (qs & 0x0F).astype(np.float32) - 8
            hi = (qs >> 4).astype(np.float32) - 8
            a = np.concatenate([lo, hi], axis=1) * d
        else:  # pragma: no cover - filtered in __init__
            raise GGUFError("cannot decode %s" % t.type_name)
        return np.asarray(a, dtype=dtype).reshape(shape)

    def arrays(self, dtype=np.float32):
        return OrderedDict((n, self.array(n, dtype)) for n in self.tensors)


def describe(path):
    """Human-readable dump (used by `python3 gguf.py FILE`)."""
    g = GGUFReader(path)
    lines = ["%s: GGUF v%d, alignment %d, %d kv, %d tensors" % (path, g.version, g.alignment, len(g.kv),
                                                                len(g.tensors))]
    for k, v in g.kv.items():
        t = g.kv_type[k]
        if isinstance(t, tuple):
            tn = "arr[%s]" % TYPE_NAMES.get(t[1], t[1])
            sv = repr(v[:8])[:-1] + (", ...]" if len(v) > 8 else "]")
        else:
            tn, sv = TYPE_NAMES.get(t, t), repr(v)
        lines.append("  %-40s %-10s %s" % (k, tn, sv))
    for t in g.tensors.values():
        lines.append("  %-40s %-5s ne=%s" % (t.name, t.type_name, list(t.ne)))
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import sys
    ap = argparse.ArgumentParser(description="Print the metadata and tensor table of GGUF files.")
    ap.add_argument("files", nargs="+", metavar="FILE.gguf")
    args = ap.parse_args()
    rc = 0
    for p in args.files:
        try:
            print(describe(p))
        except (OSError, GGUFError) as e:
            print("error: %s" % e, file=sys.stderr)
            rc = 2
    sys.exit(rc)
