#!/usr/bin/env bash
# The kernels' tests on aarch64 (NEON backend, ARMv8 AES engine), cross-built and run under
# qemu user-mode emulation. Idempotent: installs only what is missing (the Rust target, the GNU
# cross linker and libc, qemu-user), then builds, lints and tests. The linker and the qemu runner
# (`-cpu max`: NEON + AES) come from .cargo/config.toml. Measured on the loaded 2-core CI machine
# with the packages present: 3 min 36 s from an empty target directory, 68 s incremental. qemu
# timings say nothing about hardware speed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
target=aarch64-unknown-linux-gnu

if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi
missing=()
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || missing+=(libc6-dev-arm64-cross)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi

cargo clippy -p bunet-kernels --all-targets --target "$target" -- -D warnings
# Fail rather than silently test only the scalar engine if qemu lacks the AES extension.
BUNET_REQUIRE_ARM_AES=1 cargo test -p bunet-kernels --release --target "$target"
# The portable path once more, chosen by detection.
BUNET_FORCE_SCALAR=1 cargo test -p bunet-kernels --release --target "$target"
