#!/usr/bin/python3
"""Prepare the King James Bible corpus and tokenizer for tools/train/train_llm.py.

    prep_kjv.py [--out out/llm/kjv] [--vocab 1024] [--raw FILE]

1. Text: the KJV from Debian's bible-kjv package (public domain text; `apt-get install
   bible-kjv`), printed whole by `bible -l 100000 Gen1:1-Rev22:21` (or read from --raw, a file
   holding that output). That output is "Book N" heading lines followed by "  V text" verse
   lines; each chapter becomes one document: "Book N\\n" + its verses, one per line, without
   verse numbers.
2. Split: chapters are numbered 0..1188 in canonical order; chapter i is held out (valid) when
   i % 20 == 10 (59 chapters, spread over the whole book); the rest is train. Deterministic.
3. Tokenizer: a SentencePiece-style BPE vocab trained on train only (tools/train/spm_bpe.py):
   <unk> <s> </s>, 256 byte tokens <0x00>..<0xFF>, the characters of the train text, then merges
   until --vocab tokens. Written as out/tokenizer.json (tokens, scores, types).
4. Token streams: each document = BOS + SPM-encode(document) + EOS, concatenated, as uint16
   little-endian: out/train.bin, out/valid.bin. Encoding is exactly the runtime's SPM algorithm
   (tools/reference/llama_tok.py), so training sees what `sparrow generate` will produce.
Prints the sizes and sha256 of every output (also in out/prep.json).
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
sys.path.insert(0, os.path.join(ROOT, "tools", "convert"))
import spm_bpe  # noqa: E402

HOLDOUT_MOD, HOLDOUT_REM = 20, 10
HEAD_RE = re.compile(r"^(\S.*\S) (\d+)$")
VERSE_RE = re.compile(r"^ +(\d+) (.*)$")


def bible_text(raw_path=None):
    if raw_path:
        with open(raw_path, encoding="ascii") as f:
            return f.read()
    try:
        p = subprocess.run(["bible", "-l", "100000", "Gen1:1-Rev22:21"], capture_output=True, check=True)
    except FileNotFoundError:
        raise SystemExit("prep_kjv.py: the `bible` program is missing: apt-get install bible-kjv")
    return p.stdout.decode("ascii")


def chapters(raw):
    """-> list of (heading, [verse texts])."""
    out = []
    cur = None
    expect = 1
    for line in raw.split("\n"):
        if not line.strip():
            continue
        m = VERSE_RE.match(line)
        if m:
            if cur is None or int(m.group(1)) != expect:
                raise SystemExit("prep_kjv.py: unexpected verse line %r" % line[:60])
            cur[1].append(" ".join(m.group(2).split()))
            expect += 1
            continue
        m = HEAD_RE.match(line)
        if not m:
            raise SystemExit("prep_kjv.py: unexpected line %r" % line[:60])
        cur = (line.strip(), [])
        out.append(cur)
        expect = 1
    if len(out) != 1189 or sum(len(v) for _, v in out) != 31102:
        raise SystemExit("prep_kjv.py: expected 1189 chapters / 31102 verses, got %d / %d"
                         % (len(out), sum(len(v) for _, v in out)))
    return out


def sha(b):
    return hashlib.sha256(b).hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "llm", "kjv"))
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--raw", help="saved output of `bible -l 100000 Gen1:1-Rev22:21`")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    docs = ["%s\n%s" % (h, "\n".join(v)) for h, v in chapters(bible_text(args.raw))]
    train = [d for i, d in enumerate(docs) if i % HOLDOUT_MOD != HOLDOUT_REM]
    valid = [d for i, d in enumerate(docs) if i % HOLDOUT_MOD == HOLDOUT_REM]
    info = {"chapters": len(docs), "train_chapters": len(train), "valid_chapters": len(valid)}
    for name, ds in (("train", train), ("valid", valid)):
        b = "\n\n".join(ds).encode("ascii") + b"\n"
        with open(os.path.join(args.out, name + ".txt"), "wb") as f:
            f.write(b)
        info[name + "_txt_bytes"], info[name + "_txt_sha256"] = len(b), sha(b)
    vocab = spm_bpe.train(train, args.vocab)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    tok = spm_bpe.make_tokenizer(vocab)
    for name, ds in (("train", train), ("valid", valid)):
        ids = spm_bpe.encode_docs(tok, ds)
        if max(ids) >= 65536:
            raise SystemExit("vocab too large for uint16 streams")
        raw = np.asarray(ids, dtype="<u2").tobytes()
        with open(os.path.join(args.out, name + ".bin"), "wb") as f:
            f.write(raw)
        nbytes = sum(len(d.encode("utf-8")) for d in ds)
        info[name + "_tokens"] = len(ids)
        info[name + "_text_bytes_per_token"] = round(nbytes / (len(ids) - 2 * len(ds)), 4)
        info[name + "_bin_sha256"] = sha(raw)
        # doc text bytes (what per-byte perplexity divides by): document bytes + 1 per EOS
        info[name + "_doc_bytes"] = nbytes
    info["vocab"] = len(vocab["tokens"])
    info["tokenizer_sha256"] = sha(open(os.path.join(args.out, "tokenizer.json"), "rb").read())
    info["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(args.out, "prep.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
