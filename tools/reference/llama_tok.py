"""Reference tokenizers for llama GGUF files (pure Python), independent of the C runtime.

SPM ("llama"): as llama.cpp's llm_tokenizer_spm: spaces -> U+2581, one U+2581 prepended when
add_space_prefix, then repeatedly merge the adjacent pair whose concatenation is a vocab token
with the highest score (ties: leftmost); a final symbol that is not a token becomes its UTF-8
bytes as <0xHH> tokens (unk if there is no such token). Decode: byte tokens -> their byte,
U+2581 -> ' ', control tokens -> nothing; the space prefix is dropped after a leading BOS.

GPT-2 byte-level BPE ("gpt2"): decode only (encoding needs the \\p{L} pre-tokenizer regex).
"""

import heapq

SPACE = "\u2581"


def bytes_to_unicode():
    """GPT-2's byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


class Tokenizer:
    def __init__(self, kv):
        """kv: a GGUF KV dict (gguf.GGUFReader.kv)."""
        self.model = kv["tokenizer.ggml.model"]
        toks = kv["tokenizer.ggml.tokens"]
        self.tokens = [t if isinstance(t, str) else t.decode("utf-8", "replace") for t in toks]
        n = len(self.tokens)
        self.scores = list(kv.get("tokenizer.ggml.scores", [0.0] * n))
        self.types = list(kv.get("tokenizer.ggml.token_type", [1] * n))
        spm = self.model == "llama"
        self.bos = kv.get("tokenizer.ggml.bos_token_id", 1 if spm else 11)
        self.eos = kv.get("tokenizer.ggml.eos_token_id", 2 if spm else 11)
        self.unk = kv.get("tokenizer.ggml.unknown_token_id", 0 if spm else None)
        self.add_bos = kv.get("tokenizer.ggml.add_bos_token", spm)
        self.add_space_prefix = kv.get("tokenizer.ggml.add_space_prefix", spm)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.byte_id = {}
        for i, t in enumerate(self.tokens):
            if self.types[i] == 6 and len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                self.byte_id[int(t[3:5], 16)] = i
        if self.model == "gpt2":
            self.byte_dec = {c: b for b, c in bytes_to_unicode().items()}

    @property
    def n_vocab(self):
        return len(self.tokens)

    # -- SPM ---------------------------------------------------------------------------------------

    def encode(self, text, bos=None):
        if self.model != "llama":
            raise NotImplementedError("reference encode supports tokenizer.ggml.model 'llama' only")
        if bos is None:
            bos = self.add_bos
        out = [self.bos] if bos else []
        if text:
            s = text.replace(" ", SPACE)
            if self.add_space_prefix:
                s = SPACE + s
            out += self.encode_piece(s)
        return out

    def encode_piece(self, s):
        """SPM merge of an already escaped string (no prefix added)."""
        sym = list(s)
        n = len(sym)
        if n == 0:
            return []
        prev = list(range(-1, n - 1))
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        alive = [True] * n
        heap = []

        def push(i):
            j = nxt[i]
            if i < 0 or j < 0:
                return
            t = self.index.get(sym[i] + sym[j])
            if t is not None:
                heapq.heappush(heap, (-self.scores[t], i, sym[i], sym[j]))

        for i in range(n - 1):
            push(i)
        while heap:
            _, i, a, b = heapq.heappop(heap)
            j = nxt[i]
            if not alive[i] or j < 0 or sym[i] != a or sym[j] != b:
                continue  # stale
            sym[i] = a + b
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[j] >= 0:
                prev[nxt[j]] = i
            push(prev[i])
            push(i)
        out = []
        i = 0
        while i >= 0:
            t = self.index.get(sym[i])
            if t is not None:
                out.append(t)
            else:
                for byte in sym[i].encode("utf-8"):
                    out.append(self.byte_id.get(byte, self.unk))
            i = nxt[i]
        return out

    # -- decode ------------------------------------------------------------------------------------

    def piece_bytes(self, t):
        tt = self.types[t]
        if tt in (3, 5):  # control, unused
            return b""
        s = self.tokens[t]
        if self.model == "llama":
            if tt == 6 and t in self.byte_id.values():
                return bytes([int(s[3:5], 16)])
            return s.replace(SPACE, " ").encode("utf-8")
        return bytes(self.byte_dec.get(c, 0x3F) for c in s)

    def decode(self, ids):
        out = bytearray()
        for k, t in enumerate(ids):
            p = self.piece_bytes(t)
            if self.model == "llama" and self.add_space_prefix and k > 0 and ids[k - 1] == self.bos and \
                    p.startswith(b" ") and k == 1:
                p = p[1:]
            out += p
        return bytes(out).decode("utf-8", "replace")
