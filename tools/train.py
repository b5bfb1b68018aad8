#!/usr/bin/env python3
"""Train BUNET's default UNet weights on synthetic chest CT volumes and export them as safetensors.

The model is the seed's UNet: mateuszbuda/brain-segmentation-pytorch's 2D UNet applied slice by
slice ("2.5D": 5 input channels = the slices at offsets -5, -2, 0, +2, +5, zeros outside the
volume), base features 16, depth 4 (16-32-64-128, bottleneck 256), BatchNorm, ReLU, *average*
pooling instead of max pooling (seed section 4.2), a 1x1 head to 2 classes; argmax gives the mask.

Data: volumes written by `bunet generate` (ground-truth lesion masks included), so the recipe
needs nothing from outside this repository. Held-out volumes use seeds disjoint from training.

One command, end to end (builds the binary if needed, generates the data, trains, evaluates,
exports):

    python3 tools/train.py

See tools/README.md for the options, the input normalisation and the exported tensor names.
"""

import argparse
import gzip
import json
import math
import struct
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
OFFSETS = (-5, -2, 0, 2, 5)
# Input normalisation: HU clipped to the lung window, then mapped to [-1, 1].
HU_LO, HU_HI = -1000.0, 400.0
ARCHITECTURE = "unet2d-mateuszbuda-2.5d"


# ----------------------------------------------------------------------------- model


class UNet(nn.Module):
    """mateuszbuda/brain-segmentation-pytorch UNet with average pooling and logits out.

    Module and parameter names are kept exactly (encoder1.enc1conv1.weight, ...,
    conv.weight) so that the exported state_dict reads like the original's.
    """

    def __init__(self, in_channels=5, out_channels=2, init_features=16, pool="avg"):
        super().__init__()
        f = init_features
        Pool = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
        self.encoder1 = UNet._block(in_channels, f, name="enc1")
        self.pool1 = Pool(kernel_size=2, stride=2)
        self.encoder2 = UNet._block(f, f * 2, name="enc2")
        self.pool2 = Pool(kernel_size=2, stride=2)
        self.encoder3 = UNet._block(f * 2, f * 4, name="enc3")
        self.pool3 = Pool(kernel_size=2, stride=2)
        self.encoder4 = UNet._block(f * 4, f * 8, name="enc4")
        self.pool4 = Pool(kernel_size=2, stride=2)
        self.bottleneck = UNet._block(f * 8, f * 16, name="bottleneck")
        self.upconv4 = nn.ConvTranspose2d(f * 16, f * 8, kernel_size=2, stride=2)
        self.decoder4 = UNet._block(f * 8 * 2, f * 8, name="dec4")
        self.upconv3 = nn.ConvTranspose2d(f * 8, f * 4, kernel_size=2, stride=2)
        self.decoder3 = UNet._block(f * 4 * 2, f * 4, name="dec3")
        self.upconv2 = nn.ConvTranspose2d(f * 4, f * 2, kernel_size=2, stride=2)
        self.decoder2 = UNet._block(f * 2 * 2, f * 2, name="dec2")
        self.upconv1 = nn.ConvTranspose2d(f * 2, f, kernel_size=2, stride=2)
        self.decoder1 = UNet._block(f * 2, f, name="dec1")
        self.conv = nn.Conv2d(in_channels=f, out_channels=out_channels, kernel_size=1)

    def forward(self, x):
        enc1 = self.encoder1(x)
        enc2 = self.encoder2(self.pool1(enc1))
        enc3 = self.encoder3(self.pool2(enc2))
        enc4 = self.encoder4(self.pool3(enc3))
        bottleneck = self.bottleneck(self.pool4(enc4))
        dec4 = self.decoder4(torch.cat((self.upconv4(bottleneck), enc4), dim=1))
        dec3 = self.decoder3(torch.cat((self.upconv3(dec4), enc3), dim=1))
        dec2 = self.decoder2(torch.cat((self.upconv2(dec3), enc2), dim=1))
        dec1 = self.decoder1(torch.cat((self.upconv1(dec2), enc1), dim=1))
        return self.conv(dec1)  # logits; argmax over the 2 classes gives the mask

    @staticmethod
    def _block(in_channels, features, name):
        return nn.Sequential(
            OrderedDict(
                [
                    (name + "conv1", nn.Conv2d(in_channels, features, 3, padding=1, bias=False)),
                    (name + "norm1", nn.BatchNorm2d(num_features=features)),
                    (name + "relu1", nn.ReLU(inplace=True)),
                    (name + "conv2", nn.Conv2d(features, features, 3, padding=1, bias=False)),
                    (name + "norm2", nn.BatchNorm2d(num_features=features)),
                    (name + "relu2", nn.ReLU(inplace=True)),
                ]
            )
        )


# ----------------------------------------------------------------------------- data

NIFTI_DTYPES = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64,
                256: np.int8, 512: np.uint16, 768: np.uint32}


def read_nifti(path):
    """Tiny NIfTI-1 reader: returns a float32 array indexed [z, y, x] with scl_slope/inter applied."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 352:
        raise ValueError(f"{path}: too short for a NIfTI-1 header")
    endian = "<" if struct.unpack("<i", raw[:4])[0] == 348 else ">"
    if struct.unpack(endian + "i", raw[:4])[0] != 348 or raw[344:347] != b"n+1":
        raise ValueError(f"{path}: not a single-file NIfTI-1 image")
    dim = struct.unpack(endian + "8h", raw[40:56])
    datatype = struct.unpack(endian + "h", raw[70:72])[0]
    vox_offset = int(struct.unpack(endian + "f", raw[108:112])[0])
    slope, inter = struct.unpack(endian + "2f", raw[112:120])
    nx, ny, nz = dim[1], dim[2], dim[3] if dim[0] >= 3 else 1
    dtype = np.dtype(NIFTI_DTYPES[datatype]).newbyteorder(endian)
    data = np.frombuffer(raw, dtype=dtype, count=nx * ny * nz, offset=vox_offset)
    data = data.astype(np.float32).reshape(nz, ny, nx)
    if slope != 0.0:
        data = data * slope + inter
    return data


def read_spacing(path):
    """pixdim[1:4] of a NIfTI-1 file (mm), read from the header alone."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        raw = fh.read(348)
    endian = "<" if struct.unpack("<i", raw[:4])[0] == 348 else ">"
    return [abs(v) for v in struct.unpack(endian + "8f", raw[76:108])[1:4]]


def pad_to(x, y, ny, nx):
    """Pads [z, 5, h, w] inputs with air (normalised -1; 0 stays 0 outside the volume) and
    [z, h, w] labels with 0 at the bottom and right, as bunet pads, to ny x nx."""
    z, c, h, w = x.shape
    xp = np.zeros((z, c, ny, nx), dtype=np.float32)
    for k in range(c):
        # A channel that is all zero lies outside the volume: it stays zero.
        outside = ~x[:, k].reshape(z, -1).any(axis=1)
        xp[:, k] = -1.0
        xp[outside, k] = 0.0
    xp[:, :, :h, :w] = x
    yp = np.zeros((z, ny, nx), dtype=y.dtype)
    yp[:, :h, :w] = y
    return xp, yp


def load_dataset(folder):
    """nnU-Net layout: labelsTr/CASE.nii[.gz] and imagesTr/CASE_0000.nii[.gz] (CT in HU).
    Any non-zero label is foreground. Returns [(name, inputs, labels, spacing)]."""
    labels_dir, images_dir = folder / "labelsTr", folder / "imagesTr"
    if not labels_dir.is_dir() or not images_dir.is_dir():
        raise SystemExit(f"{folder}: expected imagesTr/ and labelsTr/ (nnU-Net layout)")
    cases = []
    for lab in sorted(labels_dir.iterdir()):
        name = lab.name
        for ext in (".nii.gz", ".nii"):
            if name.endswith(ext):
                case = name[: -len(ext)]
                break
        else:
            continue
        img = next((images_dir / f"{case}_0000{e}" for e in (".nii.gz", ".nii")
                    if (images_dir / f"{case}_0000{e}").exists()), None)
        if img is None:
            raise SystemExit(f"{lab}: no imagesTr/{case}_0000.nii[.gz]")
        hu, y = read_nifti(img), read_nifti(lab)
        if hu.shape != y.shape:
            raise SystemExit(f"{case}: image {hu.shape} and label {y.shape} differ")
        if not np.isfinite(hu).all():
            raise SystemExit(f"{img}: NaN or infinite voxels")
        cases.append((case, stack_inputs(normalize(hu)), (y > 0.5).astype(np.int64),
                      read_spacing(img)))
    if len(cases) < 2:
        raise SystemExit(f"{folder}: need at least 2 cases (training and held-out)")
    return cases


def normalize(hu):
    lo, hi = HU_LO, HU_HI
    return (np.clip(hu, lo, hi) - (lo + hi) / 2) / ((hi - lo) / 2)


def stack_inputs(vol):
    """[z, y, x] normalised volume -> [z, 5, y, x] inputs, zeros outside the volume."""
    nz = vol.shape[0]
    out = np.zeros((nz, len(OFFSETS)) + vol.shape[1:], dtype=np.float32)
    for c, off in enumerate(OFFSETS):
        for z in range(nz):
            zz = z + off
            if 0 <= zz < nz:
                out[z, c] = vol[zz]
    return out


def find_bunet(explicit):
    if explicit:
        return Path(explicit)
    exe = REPO / "target" / "release" / "bunet"
    if not exe.exists():
        print("building the bunet binary (cargo build -p bunet-harness --release)", flush=True)
        subprocess.run(["cargo", "build", "-p", "bunet-harness", "--release"], cwd=REPO, check=True)
    return exe


def generate(bunet, data_dir, seed, size, slices):
    out = data_dir / f"seed{seed}_{size}x{slices}"
    if not (out / "ct.nii.gz").exists() or not (out / "label.nii.gz").exists():
        subprocess.run(
            [str(bunet), "generate", "--size", str(size), "--slices", str(slices),
             "--seed", str(seed), "--out", str(out)],
            check=True, stdout=subprocess.DEVNULL,
        )
    x = stack_inputs(normalize(read_nifti(out / "ct.nii.gz")))
    y = (read_nifti(out / "label.nii.gz") > 0.5).astype(np.int64)
    return x, y


# ----------------------------------------------------------------------------- training


def dice_loss(logits, target, eps=1.0):
    p = torch.softmax(logits, dim=1)[:, 1]
    t = target.float()
    inter = (p * t).sum()
    return 1.0 - (2.0 * inter + eps) / (p.sum() + t.sum() + eps)


@torch.no_grad()
def evaluate(model, volumes, batch=8):
    """Global float Dice over all held-out voxels (argmax mask vs ground truth)."""
    model.eval()
    inter = pred_sum = gt_sum = 0
    for x, y in volumes:
        for i in range(0, x.shape[0], batch):
            logits = model(torch.from_numpy(x[i:i + batch]))
            pred = logits.argmax(dim=1).numpy()
            gt = y[i:i + batch]
            inter += int((pred & gt).sum())
            pred_sum += int(pred.sum())
            gt_sum += int(gt.sum())
    model.train()
    return 2.0 * inter / max(pred_sum + gt_sum, 1), pred_sum, gt_sum


def export(model, path, metadata):
    from safetensors.torch import save_file

    tensors = {}
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue  # training bookkeeping, not needed for inference
        tensors[name] = t.detach().to(torch.float32).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={k: str(v) for k, v in metadata.items()})
    return len(tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    ap.add_argument("--batch", type=int, default=8, help="slices per step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--size", type=int, default=128, help="in-plane size of generated volumes")
    ap.add_argument("--slices", type=int, default=48, help="slices per generated volume")
    ap.add_argument("--train-volumes", type=int, default=16)
    ap.add_argument("--heldout-volumes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=20260, help="training seed (torch, numpy)")
    ap.add_argument("--lesion-fraction", type=float, default=0.6,
                    help="share of sampled slices that contain lesion voxels")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (machine is shared)")
    ap.add_argument("--data", type=Path, default=REPO / "target" / "train-data")
    ap.add_argument("--out", type=Path, default=REPO / "weights" / "unet.safetensors")
    ap.add_argument("--bunet", help="path to the bunet binary (default: target/release/bunet)")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--dataset", type=Path,
                    help="train on your own CT: a folder with imagesTr/CASE_0000.nii.gz and "
                         "labelsTr/CASE.nii.gz (nnU-Net layout) instead of generated volumes")
    ap.add_argument("--heldout-fraction", type=float, default=0.2,
                    help="with --dataset: share of cases (the last ones) held out")
    ap.add_argument("--pool", choices=["avg", "max"], default="avg",
                    help="pooling (avg: the seed's choice, cheaper in the secure protocol)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    bunet = find_bunet(args.bunet)
    args.data.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    if args.dataset:
        cases = load_dataset(args.dataset)
        n_held = min(len(cases) - 1, max(1, int(round(len(cases) * args.heldout_fraction))))
        ny = max(c[1].shape[2] for c in cases)
        nx = max(c[1].shape[3] for c in cases)
        ny, nx = -(-ny // 16) * 16, -(-nx // 16) * 16
        padded = [pad_to(x, y, ny, nx) for _, x, y, _ in cases]
        train, held = padded[:-n_held], padded[-n_held:]
        spacing = [float(np.median([c[3][i] for c in cases[:-n_held]])) for i in range(3)]
        data_text = (f"{args.dataset}: {len(train)} training cases "
                     f"({cases[0][0]}..{cases[-n_held - 1][0]}), {n_held} held out "
                     f"({cases[-n_held][0]}..{cases[-1][0]})")
        train_seeds = held_seeds = None
    else:
        train_seeds = [1000 + i for i in range(args.train_volumes)]
        held_seeds = [9000 + i for i in range(args.heldout_volumes)]
        train = [generate(bunet, args.data, s, args.size, args.slices) for s in train_seeds]
        held = [generate(bunet, args.data, s, args.size, args.slices) for s in held_seeds]
        # bunet generate's field of view is fixed (358.4 x 358.4 x 320 mm).
        spacing = [358.4 / args.size, 358.4 / args.size, 320.0 / args.slices]
        data_text = (f"bunet generate --size {args.size} --slices {args.slices}, train seeds "
                     f"{train_seeds[0]}..{train_seeds[-1]}, held-out seeds "
                     f"{held_seeds[0]}..{held_seeds[-1]}")
    print(f"data: {len(train)} training and {len(held)} held-out volumes "
          f"in {time.time() - t0:.1f} s ({data_text})", flush=True)

    xs = np.concatenate([x for x, _ in train])
    ys = np.concatenate([y for _, y in train])
    has_lesion = np.flatnonzero(ys.reshape(ys.shape[0], -1).any(axis=1))
    no_lesion = np.flatnonzero(~ys.reshape(ys.shape[0], -1).any(axis=1))
    print(f"training slices: {len(xs)} ({len(has_lesion)} with lesions), "
          f"lesion voxel share {ys.mean():.4f}", flush=True)

    model = UNet(in_channels=len(OFFSETS), out_channels=2, init_features=16, pool=args.pool)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / max(args.steps, 1))))
    model.train()
    t0 = time.time()
    for step in range(1, args.steps + 1):
        n_les = int(round(args.batch * args.lesion_fraction)) if len(has_lesion) else 0
        idx = np.concatenate([
            rng.choice(has_lesion, n_les) if n_les else np.array([], dtype=np.int64),
            rng.choice(no_lesion if len(no_lesion) else np.arange(len(xs)), args.batch - n_les),
        ])
        x = torch.from_numpy(xs[idx])
        y = torch.from_numpy(ys[idx])
        if rng.random() < 0.5:  # left-right flip augmentation
            x, y = x.flip(-1), y.flip(-1)
        logits = model(x)
        loss = F.cross_entropy(logits, y) + dice_loss(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 10 == 0 or step == 1:
            print(f"step {step}/{args.steps} loss {loss.item():.4f} "
                  f"({(time.time() - t0) / step:.2f} s/step)", flush=True)
        if args.eval_every and step % args.eval_every == 0 and step != args.steps:
            d, _, _ = evaluate(model, held)
            print(f"step {step}: held-out float Dice {d:.4f}", flush=True)

    dice, pred_sum, gt_sum = evaluate(model, held)
    print(f"held-out float Dice: {dice:.4f} (predicted {pred_sum} / true {gt_sum} lesion voxels, "
          f"{len(held)} volumes; {data_text})", flush=True)
    metadata = OrderedDict(
        architecture=ARCHITECTURE,
        in_channels=len(OFFSETS),
        slice_offsets=",".join(str(o) for o in OFFSETS),
        init_features=16,
        depth=4,
        out_classes=2,
        pool=args.pool,
        activation="relu",
        batchnorm="unfolded (eval: running_mean/running_var, eps=1e-5)",
        input_normalization="(clip(hu, -1000, 400) + 300) / 43.75 (exported: the training "
                            "window (x + 300) / 700 times 16, encoder1.enc1conv1.weight / 16)",
        outside_volume="0 (after normalisation)",
        layout="x fastest; channels first (N, C, H=y, W=x)",
        training_seed=args.seed,
        steps=args.steps,
        batch=args.batch,
        data=data_text,
        heldout_float_dice=f"{dice:.4f}",
        torch_version=torch.__version__,
    )
    # The keys every bunet command reads (see unet/src/weights.rs).
    pool_arch = "max" if args.pool == "max" else "avg-rotation"
    metadata["bunet.architecture"] = (
        f"unet-v1 dims=2 in={len(OFFSETS)} base=16 depth=4 act=relu pool={pool_arch} classes=2")
    # The input unit is folded 16 times finer (scale / 16, first conv weights / 16: exact, the
    # same network) so that BUNET's 4 fractional input bits resolve 2.7 HU steps, not 44 HU.
    fold = 16
    metadata["bunet.input"] = (f"hu-window lo={HU_LO!r} hi={HU_HI!r} "
                               f"centre={(HU_LO + HU_HI) / 2!r} "
                               f"scale={(HU_HI - HU_LO) / 2 / fold!r}")
    metadata["bunet.spacing"] = ",".join(f"{v:.4f}" for v in spacing)
    metadata["bunet.classes"] = "background,lesion"
    metadata["bunet.head"] = "softmax2"
    metadata["bunet.training_seed"] = str(args.seed)
    with torch.no_grad():
        model.encoder1.enc1conv1.weight.div_(fold)
    n = export(model, args.out, metadata)
    print(f"wrote {n} tensors to {args.out}")
    with open(args.out.with_suffix(".json"), "w") as fh:
        json.dump(metadata, fh, indent=2)


if __name__ == "__main__":
    sys.exit(main())
