"""What the convolutional vision converters (nat.py, biformer.py) share: reading the
checkpoint (or random weights), refusing unknown tensors, the input preprocessing and
labels metadata, writing the file, and the command-line options they have in common.
The model-specific parts (tensor names, shapes, hyperparameters) stay in each converter."""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402
from vit import ConvertError, Source, load_checkpoint, read_labels  # noqa: E402

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def count_indexed(src, fmt, *args):
    """How many consecutive n make some tensor name start with fmt % (args + (n,))."""
    n = 0
    while any(k.startswith(fmt % (args + (n,))) for k in src.sd):
        n += 1
    return n


def channels(vals, c, what):
    vals = [float(x) for x in vals]
    if len(vals) == 1:
        vals = vals * c
    if len(vals) != c or any(not math.isfinite(x) for x in vals):
        raise ConvertError("--%s needs 1 or %d finite values" % (what, c))
    return vals


def open_source(args, random_state_dict):
    """The checkpoint named on the command line (or --random weights) as a Source."""
    if args.random:
        if not args.variant:
            raise ConvertError("--random needs --variant")
        return Source(random_state_dict(args.variant, args.classes, args.seed), "<random %s>" % args.variant)
    if args.checkpoint is None:
        raise ConvertError("give a checkpoint (or --random --variant NAME)")
    return Source(load_checkpoint(args.checkpoint, args.trust_pickle), args.checkpoint)


def refuse_unused(src, ignorable, allow_unused):
    left = src.unused(ignorable)
    if left:
        msg = "%d unsupported tensor(s) in %s, e.g. %s" % (len(left), src.path, ", ".join(left[:4]))
        if not allow_unused:
            raise ConvertError(msg + " (--allow-unused ignores them)")
        print("warning: " + msg + "; ignored", file=sys.stderr)


def input_hparams(args, m):
    """image_size, mean, std and labels from the options (the variant's defaults), checked
    against the model m (m["cin"] input channels, m["head"] = (weight, bias))."""
    image_size = args.image_size or (224 if args.variant else None)
    if image_size is None:
        raise ConvertError("the input size cannot be inferred from a convolutional model: pass --image-size "
                           "(or --variant)")
    if image_size < 4:
        raise ConvertError("--image-size %d is too small" % image_size)
    mean, std = args.mean, args.std
    if mean is None and std is None and args.variant:
        mean, std = IMAGENET_MEAN[:m["cin"]], IMAGENET_STD[:m["cin"]]
    if (mean is None) != (std is None):
        raise ConvertError("give both --mean and --std (or neither)")
    if mean is not None:
        mean, std = channels(mean, m["cin"], "mean"), channels(std, m["cin"], "std")
        if any(s <= 0 for s in std):
            raise ConvertError("--std values must be positive")
    labels = read_labels(args.labels) if args.labels else None
    n_classes = m["head"][0].shape[0]
    if labels is not None and len(labels) != n_classes:
        raise ConvertError("%d class labels given for %d classes" % (len(labels), n_classes))
    return dict(image_size=image_size, mean=mean, std=std, labels=labels)


def write_model(args, build_gguf, m, hp):
    """Builds the GGUF with build_gguf(m, hp, ftype, name) and writes it; returns its size."""
    name = args.name or args.variant or os.path.splitext(os.path.basename(args.checkpoint))[0]
    ftype = gguf.GGML_F16 if args.type == "f16" else gguf.GGML_F32
    try:
        w = build_gguf(m, hp, ftype, name)
    except gguf.GGUFError as e:
        raise ConvertError(str(e))
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise ConvertError("output directory %s does not exist" % out_dir)
    return w.write(args.output)


def add_common_args(ap):
    """The options after the model-specific ones (--eps included), in --help's order."""
    ap.add_argument("--labels", metavar="FILE", help="class names, one per line")
    ap.add_argument("--mean", type=float, nargs="+", help="per-channel mean of pixel/255 (1 or C values)")
    ap.add_argument("--std", type=float, nargs="+", help="per-channel std of pixel/255 (1 or C values)")
    ap.add_argument("--name", help="general.name (default: the variant or the checkpoint's file name)")
    ap.add_argument("--allow-unused", action="store_true", help="warn instead of failing on unknown tensors")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="torch.load with full unpickling (can run code from the file; only for trusted files)")
    ap.add_argument("--random", action="store_true", help="random weights for --variant (no checkpoint)")
    ap.add_argument("--classes", type=int, default=1000, help="--random: classes (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="--random: seed (default %(default)s)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")


def run_main(prog, parse_args, convert, argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except ConvertError as e:
        print("%s: error: %s" % (prog, e), file=sys.stderr)
        return 2
    return 0
