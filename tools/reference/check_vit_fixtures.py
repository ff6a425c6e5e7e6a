#!/usr/bin/python3
"""Check the ViT golden fixtures (tests/fixtures/vit/*.golden.gguf) for consistency.

For every golden file:
  1. load the model GGUF it names (golden.model) with tools/convert/gguf.py, rebuild the
     reference RefViT from it (undoing the GGUF layouts of models/vit/vit.h), check that the
     hyper-parameters in the GGUF equal golden.config, run the float64 forward on the stored
     image and compare every stored tensor (max |diff| <= 1e-5 * max(1, max |golden|));
  2. unless --quick: regenerate the config from its seed through the whole pipeline
     (tools/reference/vit_ref.py: checkpoint -> tools/convert/vit.py -> GGUF) in a temporary
     directory and require byte-identical model and golden files.
Exit status 0 when everything matches, 1 otherwise. Takes a few seconds.
"""

import argparse
import glob
import json
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vit_ref  # noqa: E402
from vit_model import RefViT  # noqa: E402
import gguf  # noqa: E402  (vit_ref put tools/convert on the path)

TOL = 1e-5


def check_forward(golden_path):
    errs = []
    g = gguf.GGUFReader(golden_path)
    model_path = os.path.join(os.path.dirname(golden_path), g.kv["golden.model"])
    mg = gguf.GGUFReader(model_path)
    m = RefViT.from_gguf_tensors(mg.kv, mg.arrays())
    want = json.loads(g.kv["golden.config"])
    have = m.config()
    for k, v in want.items():
        hv = have[k]
        if (abs(hv - v) > 1e-6 * abs(v)) if isinstance(v, float) else hv != v:
            errs.append("%s: config %s = %r in the GGUF, %r in golden.config" % (model_path, k, hv, v))
    image = torch.from_numpy(g.array("image").copy()).permute(2, 0, 1)[None]  # HWC -> NCHW
    md = m.double()
    trace = {}
    with torch.no_grad():
        md(image.double(), trace)
    for name in g.tensors:
        if name == "image":
            continue
        if name not in trace:
            errs.append("%s: %s is not produced by the reference" % (golden_path, name))
            continue
        got = trace[name][0].numpy()
        ref = g.array(name)
        if got.size != ref.size:
            errs.append("%s: %s has %d values, reference %d" % (golden_path, name, ref.size, got.size))
            continue
        got = got.reshape(ref.shape)
        diff = float(np.max(np.abs(got - ref)))
        lim = TOL * max(1.0, float(np.max(np.abs(ref))))
        if not diff <= lim:
            errs.append("%s: %s differs by %.3g (limit %.3g)" % (golden_path, name, diff, lim))
    return errs


def check_regenerate(name, fixture_dir):
    errs = []
    with tempfile.TemporaryDirectory(prefix="vit_fx_") as tmp:
        paths = vit_ref.generate(name, tmp)
        for p in paths:
            ref = os.path.join(fixture_dir, os.path.basename(p))
            with open(p, "rb") as a, open(ref, "rb") as b:
                if a.read() != b.read():
                    errs.append("%s: regenerating it gives different bytes" % ref)
    return errs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=vit_ref.DEFAULT_OUT, help="fixture directory (default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="skip the regeneration from seeds")
    args = ap.parse_args()
    torch.set_num_threads(1)
    goldens = sorted(glob.glob(os.path.join(args.dir, "*.golden.gguf")))
    if not goldens:
        print("error: no *.golden.gguf in %s" % args.dir, file=sys.stderr)
        return 1
    errs = []
    for gp in goldens:
        name = os.path.basename(gp)[:-len(".golden.gguf")]
        e = check_forward(gp)
        if not args.quick:
            if name in vit_ref.CONFIGS:
                e += check_regenerate(name, args.dir)
            else:
                e.append("%s: no config named %s in vit_ref.py" % (gp, name))
        print("%-22s %s" % (name, "ok" if not e else "FAIL"))
        errs += e
    for e in errs:
        print("  " + e, file=sys.stderr)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
