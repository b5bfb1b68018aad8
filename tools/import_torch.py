#!/usr/bin/env python3
"""Convert a PyTorch checkpoint of the seed's UNet into BUNET's self-describing safetensors.

The checkpoint is a `torch.save` of the UNet's `state_dict` (mateuszbuda/brain-segmentation-pytorch
module names: encoder1.enc1conv1.weight, encoder1.enc1norm1.running_mean, ..., upconv4.weight,
decoder4.dec4conv1.weight, ..., conv.weight), or a dict holding one under "state_dict" or "model"
(a "module." prefix from DataParallel is dropped). The feature counts, depth and input channels are
read from the tensor shapes; what the tensors cannot say is given on the command line and written
into the metadata that every `bunet` command reads:

- `--pool avg|max` (required: the state_dict of an average-pool and a max-pool UNet look the same,
  and running one as the other gives wrong masks),
- the input normalisation `x = (clip(HU, lo, hi) - centre) / scale` (`--hu-window LO,HI`,
  `--centre`, `--scale`; default the seed's: -1000,400, -300, 700),
- the training voxel spacing (`--spacing X,Y,Z` in mm) and the class names.

A one-output head (`conv.weight` of shape [1, F, 1, 1], trained with a sigmoid) is stored as the two
class scores (0, z): argmax is z > 0 (sigmoid > 0.5) and softmax is (1 - sigmoid(z), sigmoid(z)),
so masks and probabilities are the network's; the metadata says `bunet.head = sigmoid1`.

    python3 tools/import_torch.py model.pt --pool avg --out model.safetensors

Writes model.safetensors and model.json (the model card: the metadata alone, which a client passes
to `bunet segment --model-card`). Needs torch (to read the checkpoint), numpy and safetensors.
"""

import argparse
import json
import re
import sys
from pathlib import Path

BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var")


def load_state_dict(path):
    import torch

    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise SystemExit(f"{path}: expected a state_dict (a dict of tensors), found {type(obj)}")
    out = {}
    for name, t in obj.items():
        if not hasattr(t, "shape"):
            raise SystemExit(f"{path}: entry {name!r} is not a tensor")
        out[name[len("module."):] if name.startswith("module.") else name] = t
    return out


def expected_names(depth):
    """Every tensor name of the seed's UNet of this depth, with the kind of each."""
    names = {}

    def block(module, prefix):
        for j in (1, 2):
            names[f"{module}.{prefix}conv{j}.weight"] = "conv"
            for s in BN_SUFFIXES:
                names[f"{module}.{prefix}norm{j}.{s}"] = "norm"

    for i in range(1, depth + 1):
        block(f"encoder{i}", f"enc{i}")
    block("bottleneck", "bottleneck")
    for i in range(depth, 0, -1):
        names[f"upconv{i}.weight"] = "conv"
        names[f"upconv{i}.bias"] = "conv"
        block(f"decoder{i}", f"dec{i}")
    names["conv.weight"] = "conv"
    names["conv.bias"] = "conv"
    return names


def describe(sd):
    """(in_channels, base features, depth, outputs, dims) from the tensor shapes."""
    try:
        w = sd["encoder1.enc1conv1.weight"]
        head = sd["conv.weight"]
    except KeyError as e:
        raise SystemExit(f"not a UNet state_dict of the seed's shape: {e} is missing")
    depth = max(int(m.group(1)) for n in sd for m in [re.match(r"encoder(\d+)\.", n)] if m)
    dims = w.dim() - 2
    if dims not in (2, 3):
        raise SystemExit(f"encoder1.enc1conv1.weight has shape {tuple(w.shape)}: not a 2D/3D conv")
    return int(w.shape[1]), int(w.shape[0]), depth, int(head.shape[0]), dims


def pair(text, n, what):
    parts = [float(p) for p in text.split(",")]
    if len(parts) != n:
        raise SystemExit(f"{what}: expected {n} comma-separated numbers, found {text!r}")
    return parts


def fmt(v):
    """A number as the metadata writes it (Python's shortest round-trip form)."""
    return repr(float(v))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path, help="torch.save of the UNet's state_dict")
    ap.add_argument("--out", type=Path, required=True, help="output .safetensors")
    ap.add_argument("--pool", choices=["avg", "max"], required=True,
                    help="pooling the network was trained with")
    ap.add_argument("--avg-protocol", choices=["rotation", "local"], default="rotation",
                    help="secure protocol for average pooling (same function; default rotation)")
    ap.add_argument("--activation", choices=["relu", "square"], default="relu")
    ap.add_argument("--hu-window", default="-1000,400", help="LO,HI Hounsfield window")
    ap.add_argument("--centre", type=float, default=-300.0, help="HU that maps to 0")
    ap.add_argument("--scale", type=float, default=700.0, help="HU per unit of network input")
    ap.add_argument("--spacing", help="training voxel spacing X,Y,Z in mm (recommended)")
    ap.add_argument("--classes", default="background,lesion", help="names of class 0 and 1")
    ap.add_argument("--input-fold", type=int, default=16, choices=[1, 2, 4, 8, 16, 32],
                    help="power of two folded into the input unit: the stored scale is divided "
                         "by it and encoder1.enc1conv1.weight too (exact; the same network), so "
                         "BUNET's 4 fractional input bits resolve FOLD times finer steps "
                         "(default 16; the input must stay within the preset's integer bits)")
    args = ap.parse_args(argv)

    import numpy as np
    from safetensors.numpy import save_file

    sd = load_state_dict(args.checkpoint)
    in_ch, base, depth, outputs, dims = describe(sd)
    if outputs not in (1, 2):
        raise SystemExit(f"the head has {outputs} outputs: BUNET supports 2 (softmax) or 1 (sigmoid)")
    names = expected_names(depth)
    extra = sorted(n for n in sd if n not in names and not n.endswith("num_batches_tracked"))
    missing = sorted(n for n in names if n not in sd)
    if extra or missing:
        raise SystemExit(f"not the seed's UNet: missing {missing[:5]}, unexpected {extra[:5]}")
    tensors = {n: sd[n].detach().cpu().double().numpy().astype(np.float32) for n in names}
    head = "softmax2"
    if outputs == 1:
        head = "sigmoid1"
        w, b = tensors["conv.weight"], tensors["conv.bias"]
        tensors["conv.weight"] = np.concatenate([np.zeros_like(w), w], axis=0)
        tensors["conv.bias"] = np.concatenate([np.zeros_like(b), b], axis=0)
    for n, t in tensors.items():
        if not np.isfinite(t).all():
            raise SystemExit(f"tensor {n} holds NaN or infinity")

    # An input FOLD times larger with first-conv weights FOLD times smaller computes the same
    # conv output; a power of two keeps the division exact in floating point.
    tensors["encoder1.enc1conv1.weight"] = tensors["encoder1.enc1conv1.weight"] / np.float32(
        args.input_fold)
    lo, hi = pair(args.hu_window, 2, "--hu-window")
    pool = "max" if args.pool == "max" else f"avg-{args.avg_protocol}"
    arch = (f"unet-v1 dims={dims} in={in_ch} base={base} depth={depth} act={args.activation} "
            f"pool={pool} classes=2")
    classes = [c.strip() for c in args.classes.split(",")]
    if len(classes) != 2 or not all(classes):
        raise SystemExit("--classes: expected two names")
    meta = {
        "format": "pt",
        "bunet.architecture": arch,
        "bunet.input": f"hu-window lo={fmt(lo)} hi={fmt(hi)} centre={fmt(args.centre)} "
                       f"scale={fmt(args.scale / args.input_fold)}",
        "bunet.classes": ",".join(classes),
        "bunet.head": head,
        "bunet.source": f"tools/import_torch.py {args.checkpoint.name}",
    }
    if args.spacing:
        meta["bunet.spacing"] = ",".join(fmt(v) for v in pair(args.spacing, 3, "--spacing"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({n: np.ascontiguousarray(t) for n, t in tensors.items()}, str(args.out), metadata=meta)
    card = {k: v for k, v in meta.items() if k.startswith("bunet.")}
    with open(args.out.with_suffix(".json"), "w") as fh:
        json.dump(card, fh, indent=2)
    print(f"wrote {args.out} ({len(tensors)} tensors; {arch}; head {head}) and "
          f"{args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
