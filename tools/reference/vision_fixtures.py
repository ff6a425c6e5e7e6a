"""Shared machinery of the NAT and BiFormer golden fixtures (tools/reference/nat_ref.py, biformer_ref.py).

A fixture is a pair in tests/fixtures/<arch>/:
  <config>.gguf         the model, converted from an official-named checkpoint by
                        tools/convert/<arch>.py (a subprocess)
  <config>.golden.gguf  the normalized input image {C,S,S} (HWC) and the reference's float64
                        activations (stored f32) named like the C graph's nodes, plus the
                        metadata golden.model (the model file), golden.config (JSON), golden.seed
                        and golden.source ("checkpoint": the forward of the model that was saved,
                        independent of the converter; "gguf": the forward of the model read back
                        from the GGUF, for configs whose conversion rounds weights, e.g. F16 with
                        folded BatchNorms)
The test tests/unit/test_<arch>_golden.c runs Sparrow on the image and compares every node whose
name has a golden tensor. `check` re-runs the reference from the model GGUF and regenerates every
config from its seed (byte-identical files required).
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "convert"))
import gguf  # noqa: E402

TOL = 1e-5


def trace_arrays(model, image):
    """float64 forward of a copy of `model` on image [1,C,S,S]; name -> f32 numpy (ggml ne reversed)."""
    md = type(model)(**model.config()).double()
    md.load_state_dict(model.state_dict())
    for a, b in zip(md.modules(), model.modules()):  # identity BatchNorms (eps 0) survive the copy
        if hasattr(b, "eps") and isinstance(b.eps, float):
            a.eps = b.eps
    md.eval()
    trace = {}
    with torch.no_grad():
        md(image.double(), trace)
    out = {}
    for k, v in trace.items():
        a = v[0].numpy().astype(np.float32)
        out[k] = a.reshape(1, -1) if a.ndim == 1 else a
    return out


def make_image(channels, size, seed):
    g = torch.Generator().manual_seed(seed + 1000)
    return torch.randn(1, channels, size, size, generator=g)


def run_converter(cmd):
    r = subprocess.run([sys.executable] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("converter failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr))


def write_golden(path, arch, name, cfg_json, seed, source, image, trace, order):
    w = gguf.GGUFWriter()
    w.add_string("general.architecture", arch + "-golden")
    w.add_string("golden.model", name + ".gguf")
    w.add_string("golden.config", cfg_json)
    w.add_u32("golden.seed", seed)
    w.add_string("golden.source", source)
    w.add_tensor("image", image[0].permute(1, 2, 0).contiguous().numpy())  # HWC -> ne {C,S,S}
    names = [k for k in order if k in trace]
    missing = set(trace) - set(names)
    if missing:
        raise RuntimeError("traced tensors without a golden slot: %s" % sorted(missing))
    for k in names:
        w.add_tensor(k, trace[k])
    w.write(path)


def check_forward(golden_path, load_model):
    """Reference forward of the model GGUF on the stored image vs every stored tensor."""
    errs = []
    g = gguf.GGUFReader(golden_path)
    model_path = os.path.join(os.path.dirname(golden_path), g.kv["golden.model"])
    mg = gguf.GGUFReader(model_path)
    m = load_model(mg.kv, mg.arrays())
    image = torch.from_numpy(g.array("image").copy()).permute(2, 0, 1)[None]
    trace = trace_arrays(m, image)
    for name in g.tensors:
        if name == "image":
            continue
        if name not in trace:
            errs.append("%s: %s is not produced by the reference" % (golden_path, name))
            continue
        ref = g.array(name)
        got = trace[name]
        if got.size != ref.size:
            errs.append("%s: %s has %d values, reference %d" % (golden_path, name, ref.size, got.size))
            continue
        diff = float(np.max(np.abs(got.reshape(ref.shape) - ref)))
        lim = TOL * max(1.0, float(np.max(np.abs(ref))))
        if not diff <= lim:
            errs.append("%s: %s differs by %.3g (limit %.3g)" % (golden_path, name, diff, lim))
    return errs


def check_all(fixture_dir, configs, generate, load_model, quick):
    import glob
    goldens = sorted(glob.glob(os.path.join(fixture_dir, "*.golden.gguf")))
    if not goldens:
        print("error: no *.golden.gguf in %s" % fixture_dir, file=sys.stderr)
        return 1
    errs = []
    for gp in goldens:
        name = os.path.basename(gp)[:-len(".golden.gguf")]
        e = check_forward(gp, load_model)
        if not quick:
            if name not in configs:
                e.append("%s: no config named %s" % (gp, name))
            else:
                with tempfile.TemporaryDirectory(prefix="fx_") as tmp:
                    for p in generate(name, tmp):
                        ref = os.path.join(fixture_dir, os.path.basename(p))
                        with open(p, "rb") as a, open(ref, "rb") as b:
                            if a.read() != b.read():
                                e.append("%s: regenerating it gives different bytes" % ref)
        print("%-22s %s" % (name, "ok" if not e else "FAIL"))
        errs += e
    for e in errs:
        print("  " + e, file=sys.stderr)
    return 1 if errs else 0


def main(doc, configs, generate, load_model, default_out):
    import argparse
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=default_out, help="fixture directory (default %(default)s)")
    ap.add_argument("--only", nargs="+", choices=sorted(configs), help="generate only these configs")
    ap.add_argument("--list", action="store_true", help="print the configs and exit")
    ap.add_argument("--check", action="store_true",
                    help="verify the fixtures in --out-dir instead of writing them (forward + regeneration)")
    ap.add_argument("--quick", action="store_true", help="--check: skip the regeneration from seeds")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.list:
        for k, v in configs.items():
            print("%-20s %s" % (k, json.dumps(v, sort_keys=True)))
        return 0
    if args.check:
        return check_all(args.out_dir, configs, generate, load_model, args.quick)
    os.makedirs(args.out_dir, exist_ok=True)
    total = 0
    for name in args.only or configs:
        paths = generate(name, args.out_dir)
        sizes = [os.path.getsize(p) for p in paths]
        total += sum(sizes)
        print("%-20s model %6d B  golden %6d B" % (name, sizes[0], sizes[1]))
    print("total %d B" % total)
    return 0
