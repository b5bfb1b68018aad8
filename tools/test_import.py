#!/usr/bin/env python3
"""Round trip of tools/import_torch.py: a random seed-shaped UNet in PyTorch -> torch.save ->
import -> `bunet infer --logits` on a NIfTI volume; BUNET's float logits must equal PyTorch's
within 1e-4, for the two-class softmax head and for a one-output sigmoid head.

    python3 tools/test_import.py --bunet target/release/bunet

Run by `cargo test -p bunet-harness --release --test import_torch`, which skips it (saying so)
where torch is not installed. Exit 0 on success, 1 on a mismatch.
"""

import argparse
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import OFFSETS, UNet, read_nifti  # noqa: E402


def write_nifti(path, vol, spacing=(0.8, 0.8, 2.0)):
    """Minimal uncompressed NIfTI-1 writer: vol is float32 [z, y, x]."""
    nz, ny, nx = vol.shape
    h = bytearray(352)
    struct.pack_into("<i", h, 0, 348)
    struct.pack_into("<8h", h, 40, 3, nx, ny, nz, 1, 1, 1, 1)
    struct.pack_into("<hh", h, 70, 16, 32)  # datatype float32, bitpix
    struct.pack_into("<8f", h, 76, 1.0, *spacing, 0, 0, 0, 0)
    struct.pack_into("<f", h, 108, 352.0)  # vox_offset
    struct.pack_into("<f", h, 112, 1.0)  # scl_slope
    h[123] = 2 | 8  # mm, s
    h[344:348] = b"n+1\0"
    with open(path, "wb") as fh:
        fh.write(bytes(h))
        fh.write(vol.astype("<f4").tobytes())


def randomise(model, gen):
    """Random BatchNorm statistics and affine parameters, so that folding is exercised."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 1.5 + 0.25)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) * 0.6 + 0.7)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
        # A trained head has margins: scale it so that the logits reach several units and
        # both classes occur, which the mask comparison then checks.
        model.conv.weight.mul_(40.0)
    model.eval()


def pytorch_logits(model, hu, lo=-1000.0, hi=400.0, centre=-300.0, scale=700.0):
    x = (np.clip(hu, lo, hi) - centre) / scale
    nz = x.shape[0]
    stacks = np.zeros((nz, len(OFFSETS)) + x.shape[1:], dtype=np.float32)
    for c, off in enumerate(OFFSETS):
        for z in range(nz):
            if 0 <= z + off < nz:
                stacks[z, c] = x[z + off]
    with torch.no_grad():
        return model(torch.from_numpy(stacks)).numpy()  # [z, classes, y, x]


def run(bunet, work, outputs, pool, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = UNet(in_channels=len(OFFSETS), out_channels=outputs, init_features=16, pool=pool)
    randomise(model, gen)
    ckpt = work / f"unet{outputs}.pt"
    torch.save(model.state_dict(), ckpt)
    st = work / f"unet{outputs}.safetensors"
    subprocess.run([sys.executable, str(Path(__file__).parent / "import_torch.py"), str(ckpt),
                    "--pool", pool, "--out", str(st), "--spacing", "0.8,0.8,2"], check=True)
    rng = np.random.default_rng(seed)
    hu = (rng.normal(-600, 350, size=(12, 32, 48))).astype(np.float32)
    ct = work / "ct.nii"
    write_nifti(ct, hu)
    out = work / f"infer{outputs}"
    subprocess.run([str(bunet), "infer", "--input", str(ct), "--weights", str(st), "--logits",
                    "--out", str(out)], check=True)
    l0 = read_nifti(out / "logits_class0.nii.gz")
    l1 = read_nifti(out / "logits_class1.nii.gz")
    want = pytorch_logits(model, hu)
    if outputs == 2:
        err = max(np.abs(l0 - want[:, 0]).max(), np.abs(l1 - want[:, 1]).max())
    else:
        # The sigmoid head is imported as the scores (0, z).
        err = max(np.abs(l0).max(), np.abs(l1 - want[:, 0]).max())
    scale = float(np.abs(want).max())
    mask = read_nifti(out / "mask.nii.gz")
    want_mask = (want[:, 1] > want[:, 0]) if outputs == 2 else (want[:, 0] > 0)
    agree = float((mask.astype(bool) == want_mask).mean())
    print(f"{outputs}-output head, {pool} pool: max |logit difference| {err:.2e} "
          f"(logits up to {scale:.2f}); mask agreement {agree:.6f}")
    return err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bunet", required=True, type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        errs = [run(args.bunet, work, 2, "avg", 17), run(args.bunet, work, 1, "max", 18)]
    if max(errs) > 1e-4:
        print(f"FAIL: logits differ by {max(errs):.2e} > 1e-4")
        return 1
    print("ok: BUNET's float logits equal PyTorch's within 1e-4")
    return 0


if __name__ == "__main__":
    sys.exit(main())
