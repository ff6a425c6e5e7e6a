"""A small SentencePiece-style BPE vocabulary trainer (pure Python, deterministic).

The result is a llama GGUF tokenizer (tokenizer.ggml.model "llama"):
  id 0 <unk> (type 2), 1 <s>, 2 </s> (type 3), 3..258 <0x00>..<0xFF> (type 6, byte fallback),
  then every character of the training text except "\\n" (newlines use <0x0A>), then one token
  per BPE merge, until vocab_size tokens.
  Scores: the token made by merge r (r = 1, 2, ...) scores -r; all other tokens score 0. The
  runtime's SPM encoder (merge the adjacent pair whose concatenation is a token with the
  highest score) therefore replays the merges in training order.
Training text is escaped as SentencePiece does (spaces -> U+2581, one U+2581 prepended to
each document) and cut into pieces: an optional "▁" followed by a run of letters, a run of digits,
or one other character; a lone "▁"; "\\n". Merges never cross pieces, so no token mixes letters,
digits and punctuation, holds U+2581 after its first character, or holds a newline. Because of
that, encoding a document piece by piece (with a cache) gives exactly the SPM encoding of the
whole document (encode_docs checks this on a sample).
Merge choice: the most frequent adjacent pair; ties -> the smallest (left, right) strings.
"""

import re
from collections import Counter, defaultdict

from llama_tok import SPACE, Tokenizer

PIECE_RE = re.compile("%s?(?:[^\\W\\d_]+|\\d+|[^\\w%s\n]|_)|%s|\n" % (SPACE, SPACE, SPACE))


def escape(doc):
    return SPACE + doc.replace(" ", SPACE)


def pieces(doc):
    return PIECE_RE.findall(escape(doc))


def train(docs, vocab_size, min_char_count=1):
    counts = Counter()
    for d in docs:
        counts.update(p for p in pieces(d) if p != "\n")
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    chars = Counter()
    for p, c in counts.items():
        for ch in p:
            chars[ch] += c
    for ch in sorted(ch for ch, c in chars.items() if c >= min_char_count):
        tokens.append(ch)
        types.append(1)
    scores = [0.0] * len(tokens)
    known = set(tokens)
    if len(tokens) > vocab_size:
        raise ValueError("vocab_size %d is below the %d base tokens" % (vocab_size, len(tokens)))
    words = [list(p) for p in counts]
    freq = [counts[p] for p in counts]
    pair_count = Counter()
    where = defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] += freq[i]
            where[(a, b)].add(i)
    merges = []
    while len(tokens) < vocab_size and pair_count:
        best, bc = None, 0
        for pr, c in pair_count.items():
            if c > bc or (c == bc and pr < best):
                best, bc = pr, c
        if bc < 2:
            break
        a, b = best
        ab = a + b
        merges.append(best)
        if ab not in known:
            known.add(ab)
            tokens.append(ab)
            types.append(1)
            scores.append(-float(len(merges)))
        for i in sorted(where.pop(best, ())):
            w = words[i]
            f = freq[i]
            for x, y in zip(w, w[1:]):
                pair_count[(x, y)] -= f
                if pair_count[(x, y)] <= 0:
                    del pair_count[(x, y)]
                where[(x, y)].discard(i)
            nw, k = [], 0
            while k < len(w):
                if k + 1 < len(w) and w[k] == a and w[k + 1] == b:
                    nw.append(ab)
                    k += 2
                else:
                    nw.append(w[k])
                    k += 1
            words[i] = nw
            for x, y in zip(nw, nw[1:]):
                pair_count[(x, y)] += f
                where[(x, y)].add(i)
        pair_count.pop(best, None)
    return {"tokens": tokens, "scores": scores, "types": types, "merges": ["%s %s" % m for m in merges]}


def make_tokenizer(vocab):
    kv = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": vocab["tokens"],
          "tokenizer.ggml.scores": vocab["scores"], "tokenizer.ggml.token_type": vocab["types"],
          "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
          "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.add_space_prefix": True,
          "tokenizer.ggml.add_bos_token": True}
    return Tokenizer(kv)


def encode_doc(tok, doc, cache):
    out = []
    for p in pieces(doc):
        ids = cache.get(p)
        if ids is None:
            ids = cache[p] = tok.encode_piece(p)
        out += ids
    return out


def encode_docs(tok, docs, check_every=50):
    """BOS + encode(doc) + EOS for each doc, concatenated. Every check_every-th document is also
    encoded whole (tok.encode) to confirm the piece-wise encoding is the SPM encoding."""
    cache, out = {}, []
    for i, d in enumerate(docs):
        ids = encode_doc(tok, d, cache)
        if check_every and i % check_every == 0:
            whole = tok.encode(d, bos=False)
            if whole != ids:
                raise AssertionError("piece-wise and whole-document encodings differ for document %d" % i)
        out += [tok.bos] + ids + [tok.eos]
    return out
