#!/usr/bin/env python3
"""Coverage per protocol phase of the family fuzz targets (docs/FUZZING.md, campaign 4).

For each target named on the command line (the family targets, homconv_extents and the two
session targets), cuts every honest seed (`valid_*`, `large_valid_*`
in fuzz/corpus/<target>/) just before the first frame of each later phase (phases are told
apart by frame kind), and prints libFuzzer's coverage (`cov` / `ft` of the INITED line, from a
`-runs=0` pass) of the cut seeds, of the whole seeds, and of the whole corpus directory. Run
after `cargo +nightly fuzz build` from fuzz/: `python3 phase_coverage.py ferret triples ...`
(`FUZZ_TARGET_DIR=fuzz/target-fast` for the campaign script's builds without ASan).
Coverage varies by about 2 % between passes (thread scheduling).
"""

import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
# The binaries: cargo-fuzz's default target directory, or FUZZ_TARGET_DIR (e.g. fuzz/target-fast,
# where fuzz/campaign.sh builds the targets it runs without ASan).
BIN = os.path.join(
    os.environ.get("FUZZ_TARGET_DIR", os.path.join(HERE, "target")), "x86_64-unknown-linux-gnu", "release"
)

# The phases after the set-up, in protocol order, as predicates on a frame's kind: a phase
# starts at the first frame of its own or of a later phase.
PHASES = {
    "ferret": [("COT chunks (0x0321)", lambda k: k == 0x321)],
    "silent_ot": [
        ("Ferret trees (0x0321)", lambda k: 0x321 <= k < 0x330),
        ("derived OTs / ANDs (0x033x)", lambda k: 0x330 <= k < 0x340),
    ],
    "ot_backend": [
        ("Ferret trees (0x0321)", lambda k: 0x321 <= k < 0x330),
        ("backend calls (0x033x-0x034x)", lambda k: 0x330 <= k < 0x360),
    ],
    "triples": [
        ("IKNP / Gilboa (0x031x)", lambda k: 0x310 <= k < 0x320),
        ("openings (0x040x)", lambda k: 0x400 <= k < 0x410),
    ],
    "homconv_extents": [("uploads (0x01xx)", lambda k: 0x100 <= k < 0x200)],
    # The session targets' seeds are whole transcripts (`large_valid_model*`, written by
    # `seed_corpora sessions`); the set-up is the handshake. The client's stream (what
    # session_server reads):
    "session_server": [
        ("public key, OT set-up (0x0103, 0x03xx)", lambda k: k == 0x103),
        ("request, its keys and garbling (0x0501)", lambda k: k == 0x501),
        ("HomConv uploads (0x0101, 0x0105)", lambda k: k in (0x101, 0x105)),
        ("nonlinear layers (0x0214, 0x0332-0x0340, 0x0400)",
         lambda k: k == 0x214 or 0x332 <= k <= 0x340 or k == 0x400),
    ],
    # The server's stream (what session_client reads):
    "session_client": [
        ("OT set-up (0x0300-0x0320)", lambda k: 0x300 <= k <= 0x320),
        ("request reply (0x0502)", lambda k: k == 0x502),
        ("HomConv returns (0x0102, 0x0106)", lambda k: k in (0x102, 0x106)),
        ("nonlinear layers (0x0213, 0x0330-0x0340, 0x0400)",
         lambda k: k == 0x213 or 0x330 <= k <= 0x340 or k == 0x400),
        ("result (0x0215, 0x0341)", lambda k: k in (0x215, 0x341)),
    ],
}


def frames(data, offset):
    """(offset, kind) of every frame header from `offset` on."""
    out, at = [], offset
    while at + 16 <= len(data):
        kind = struct.unpack("<H", data[at + 6 : at + 8])[0]
        length = struct.unpack("<Q", data[at + 8 : at + 16])[0]
        out.append((at, kind))
        at += 16 + length
    return out


def coverage(target, directory):
    run = subprocess.run(
        [os.path.join(BIN, target), "-runs=0", "-max_len=16777216", "-rss_limit_mb=3072", directory],
        capture_output=True,
        text=True,
        check=False,
    )
    m = re.search(r"INITED cov: (\d+) ft: (\d+)", run.stderr)
    return f"{m.group(1)} / {m.group(2)}" if m else "no INITED line: " + run.stderr[-300:]


def main():
    for target in sys.argv[1:]:
        offset = 7 if target == "homconv_extents" else 1
        phases = PHASES[target]
        names = ["extents (no upload)" if target == "homconv_extents" else "set-up"]
        names += [n for n, _ in phases]
        seeds = sorted(
            f for f in os.listdir(os.path.join(CORPUS, target)) if f.startswith(("valid_", "large_valid_"))
        )
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(len(phases) + 1):
                d = os.path.join(tmp, f"p{i}")
                os.makedirs(d)
                for f in seeds:
                    with open(os.path.join(CORPUS, target, f), "rb") as fh:
                        data = fh.read()
                    if i < len(phases):
                        later = [p for _, p in phases[i:]]
                        cut = next(
                            (at for at, k in frames(data, offset) if any(p(k) for p in later)),
                            len(data),
                        )
                        data = data[:cut]
                    with open(os.path.join(d, f), "wb") as fh:
                        fh.write(data)
                print(f"{target}: seeds through {names[i]}: cov / ft {coverage(target, d)}", flush=True)
                shutil.rmtree(d)
        print(f"{target}: whole corpus directory: cov / ft {coverage(target, os.path.join(CORPUS, target))}")


if __name__ == "__main__":
    main()
