#!/usr/bin/python3
"""Quality of core-neuron FFN sparsity (--sparse-ffn core:BETA) against the dense model.

    coreinfer_quality.py [--sparrow build/bin/sparrow] [--models stories260K,kjv]
                         [--betas 0.2,0.3,0.4,0.6,0.8,1.0] [--prompts 50] [-n 64]
                         [--shared ../shared] [--json out/coreinfer_quality.json]

For each model and prompt, the dense model generates -n tokens greedily (`sparrow generate
--temp 0 --json`). Then for each BETA (default layers, alpha 0.2):
  teacher-forced top-1   the prompt is one prefill (the selection), then the dense continuation
                         is fed token by token to the sparse model (`sparrow perplexity --ids`):
                         the fraction of positions where its arg-max is the dense token;
  ppl                    the sparse model's perplexity on that dense continuation (same run);
                         "dense" is the dense model's own, the floor;
  free-running           the sparse model generates -n tokens greedily itself: the fraction of
                         positions equal to the dense tokens, and the mean length of the common
                         prefix (tokens until the first difference).
Two extra rows at beta 0.4: every layer sparse (layers=all) and sentence re-selection
(reselect=sentence). Prompts: stories260K (converted from ../shared/models with
tools/convert/llama2c.py): 50 TinyStories-style openings (10 names x 5 templates); kjv
(models/llm-kjv.gguf): the heading and first words of each held-out chapter of Debian's
bible-kjv text (chapters i % 20 == 10, as tools/train/prep_kjv.py holds them out; needs the
`bible` program). Prints a markdown table per model; --json writes all numbers.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

NAMES = ["Lily", "Tom", "Ben", "Sue", "Max", "Mia", "Tim", "Anna", "Sam", "Lucy"]
TEMPLATES = [
    "Once upon a time, there was a little girl named {a}.",
    "One day, {a} went to the park with {b}.",
    "{a} had a big red ball. {a} wanted to",
    "Once upon a time, there was a little dog. The dog liked to play with {a}.",
    "{a} and {b} were best friends. One day they",
]


def story_prompts(n):
    out = []
    for t in TEMPLATES:
        for i, a in enumerate(NAMES):
            out.append(t.format(a=a, b=NAMES[(i + 3) % len(NAMES)]))
    return out[:n]


def kjv_prompts(n):
    try:
        text = subprocess.run(["bible", "-l", "100000", "Gen1:1-Rev22:21"], check=True, capture_output=True,
                              text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit("kjv prompts need Debian's bible-kjv (`bible` program): %s" % e)
    chapters, cur = [], None
    for line in text.splitlines():
        m = re.match(r"^\s+\d+\s+(.*)$", line)
        if m and cur is not None:
            cur[1].append(m.group(1))
        elif line.strip():
            cur = [line.strip(), []]
            chapters.append(cur)
    held = [c for i, c in enumerate(chapters) if i % 20 == 10 and c[1]]
    return ["%s\n%s" % (head, " ".join(verses[0].split()[:6])) for head, verses in held][:n]


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if r.returncode != 0:
        raise SystemExit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr))
    return json.loads(r.stdout.strip().splitlines()[-1])


def generate(args, model, prompt, spec):
    cmd = [args.sparrow, "generate", model, "-p", prompt, "-n", str(args.n), "--temp", "0", "--json",
           "--ctx", str(args.ctx), "--threads", str(args.threads)]
    if spec:
        cmd += ["--sparse-ffn", spec]
    return run_json(cmd)


def perplexity(args, model, ids_file, spec):
    cmd = [args.sparrow, "perplexity", model, ids_file, "--ids", "--json", "--ctx", str(args.ctx), "--threads",
           str(args.threads)]
    if spec:
        cmd += ["--sparse-ffn", spec]
    return run_json(cmd)


def agreement(dense, sparse):
    same = sum(1 for a, b in zip(dense, sparse) if a == b)
    prefix = 0
    for a, b in zip(dense, sparse):
        if a != b:
            break
        prefix += 1
    return same, len(dense), prefix


def evaluate(args, name, model, prompts, tmp):
    t0 = time.time()
    dense = [generate(args, model, p, None) for p in prompts]
    ids_file = os.path.join(tmp, name + ".ids")
    with open(ids_file, "w") as f:
        for d in dense:
            f.write("%s | %s\n" % (" ".join(map(str, d["prompt_ids"])), " ".join(map(str, d["ids"]))))
    rows = []
    base = perplexity(args, model, ids_file, None)
    rows.append(dict(setting="dense", beta=None, tf_top1=base["top1"], ppl=base["ppl"], free_agree=1.0,
                     prefix=sum(len(d["ids"]) for d in dense) / len(dense), tokens=base["tokens"]))
    settings = [("%g" % b, "core:%g" % b, b) for b in args.betas]
    settings += [("0.4 layers=all", "core:0.4,layers=all", 0.4), ("0.4 reselect=sentence",
                                                                   "core:0.4,reselect=sentence", 0.4)]
    for label, spec, beta in settings:
        pp = perplexity(args, model, ids_file, spec)
        same = total = prefix = 0
        for p, d in zip(prompts, dense):
            s = generate(args, model, p, spec)
            a, n, pre = agreement(d["ids"], s["ids"])
            same, total, prefix = same + a, total + n, prefix + pre
        rows.append(dict(setting=label, beta=beta, tf_top1=pp["top1"], ppl=pp["ppl"],
                         free_agree=same / max(total, 1), prefix=prefix / len(prompts), tokens=pp["tokens"]))
    return dict(model=name, path=model, prompts=len(prompts), n=args.n, seconds=time.time() - t0, rows=rows)


def markdown(res, info):
    out = ["### %s (%s; %d prompts x %d greedy tokens)" % (res["model"], info, res["prompts"], res["n"]), "",
           "| setting | teacher-forced top-1 | free-running agreement | common prefix (tokens) | ppl on dense text |",
           "|---|---|---|---|---|"]
    for r in res["rows"]:
        out.append("| %s | %.3f | %.3f | %.1f | %.3f |" % (r["setting"], r["tf_top1"], r["free_agree"], r["prefix"],
                                                          r["ppl"]))
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sparrow", default=os.path.join(ROOT, "build", "bin", "sparrow"))
    ap.add_argument("--models", default="stories260K,kjv")
    ap.add_argument("--betas", default="0.2,0.3,0.4,0.6,0.8,1.0")
    ap.add_argument("--prompts", type=int, default=50)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    args.betas = [float(b) for b in args.betas.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            if name == "stories260K":
                mb = os.path.join(args.shared, "models", "stories260K.bin")
                if not os.path.exists(mb):
                    print("skip stories260K: %s not found (--shared)" % mb)
                    continue
                model = os.path.join(tmp, "stories260K.gguf")
                subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert", "llama2c.py"), mb,
                                "--tokenizer", os.path.join(args.shared, "models", "tok512.bin"), "-o", model, "-q"],
                               check=True)
                prompts, info = story_prompts(args.prompts), "dim 64, 5 layers, n_ff 172"
            elif name == "kjv":
                model, prompts = os.path.join(ROOT, "models", "llm-kjv.gguf"), kjv_prompts(args.prompts)
                info = "dim 128, 5 layers, n_ff 288"
            else:
                raise SystemExit("unknown model %s (stories260K, kjv)" % name)
            res = evaluate(args, name, model, prompts, tmp)
            results.append(res)
            print(markdown(res, info))
            print()
            sys.stdout.flush()
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
