#!/usr/bin/env bash
# A fuzz campaign: builds the listed targets, runs each for SECONDS (PARALLEL at a time, under
# `nice`) on a copy of its checked-in corpus with the per-target libFuzzer flags of
# docs/FUZZING.md, minimises what it found into the checked-in corpus the way campaign 4 did
# (named seeds kept, inputs adding a coverage edge merged in, inputs over 64 KB left out), and
# prints one line per target. See docs/FUZZING.md, "Build settings and the campaign script".
#
#   fuzz/campaign.sh [-t SECONDS] [-j PARALLEL] [-n NICE] [-o DIR] [--no-build] [--dry] TARGET...
#
#   -t SECONDS   fuzzing time per target (default 1800: the issue's 30 minutes)
#   -j PARALLEL  targets fuzzed at once (default 2: one per core of the 2-core machine)
#   -n NICE      niceness of the fuzzers and merges (default 10)
#   -o DIR       work directory: run corpora, logs, artifacts, merged corpora
#                (default /tmp/bunet-campaign-<UTC time>)
#   --no-build   use the binaries built before (same build settings)
#   --dry        leave fuzz/corpus/ alone (the minimised corpora stay in DIR/<target>/min)
#
# Build settings (docs/FUZZING.md, "Build settings and the campaign script"): every target is
# built with FAST_BUILD into fuzz/target-fast, except the kernels' own targets
# (ntt_differential, modulus_ops: their unsafe SIMD code is what ASan checks) and targets whose
# flags include -malloc_limit_mb (libFuzzer enforces that limit only through a sanitizer's
# allocator hooks), which are built with ASAN_BUILD into fuzz/target. Both default to
# cargo-fuzz's default (ASan, debug assertions): dropping ASan for the protocol targets
# (FAST_BUILD="--sanitizer none": safe Rust outside `kernels`, debug assertions and overflow
# checks kept) showed no speed-up yet in a loaded measurement.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seconds=1800
parallel=2
niceness=10
out=""
build=1
dry=0
targets=()
while (($#)); do
    case "$1" in
        -t) seconds=$2; shift 2 ;;
        -j) parallel=$2; shift 2 ;;
        -n) niceness=$2; shift 2 ;;
        -o) out=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --dry) dry=1; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        -*) echo "campaign.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if ((${#targets[@]} == 0)); then
    echo "campaign.sh: name at least one target (fuzz/fuzz_targets/*.rs)" >&2
    exit 2
fi
# `nice` alone ranks processes only within their scheduling autogroup (one per session): a
# campaign started from a session of its own would take half the machine from every other
# session's builds whatever its niceness, so the whole group gets the niceness too.
if [[ -w /proc/self/autogroup ]]; then
    echo "$niceness" >/proc/self/autogroup 2>/dev/null || true
fi
FAST_BUILD=${FAST_BUILD-}
ASAN_BUILD=${ASAN_BUILD-}
out=${out:-/tmp/bunet-campaign-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
host=$(rustc +nightly -vV | sed -n 's/^host: //p')

# The libFuzzer flags of a target: docs/FUZZING.md campaign 4 for the family targets and the
# handshake; the session targets' input limit above their whole honest transcripts (up to
# 11.4 MB, the `large_valid_model*` seeds) and their RSS limit above what libFuzzer's in-memory
# corpus of such inputs reaches (2 GB after 13 minutes of session_server in campaign 7: every
# input it keeps is 1-11 MB); campaign 2's for the others.
flags_for() {
    case "$1" in
        ferret|silent_ot|ot_backend|triples)
            echo "-max_len=131072 -rss_limit_mb=2048 -timeout=30" ;;
        homconv_extents)
            echo "-max_len=1200000 -malloc_limit_mb=256 -rss_limit_mb=3072 -timeout=60" ;;
        handshake)
            echo "-rss_limit_mb=2048 -timeout=30" ;;
        session_server|session_client)
            echo "-max_len=16777216 -rss_limit_mb=10240 -timeout=60" ;;
        *)
            echo "-rss_limit_mb=2048 -timeout=20" ;;
    esac
}

# The build settings and target directory of a target: ASan for the targets of the kernels'
# unsafe code and for those whose flags need the sanitizer's allocator hooks.
build_for() {
    case "$1" in
        ntt_differential|modulus_ops) echo "$here/target|$ASAN_BUILD"; return ;;
    esac
    case "$(flags_for "$1")" in
        *-malloc_limit_mb*) echo "$here/target|$ASAN_BUILD" ;;
        *) echo "$here/target-fast|$FAST_BUILD" ;;
    esac
}

binary_for() {
    echo "${1%%|*}/$host/release/$2"
}

is_seed() { # a named seed (valid_*, invalid_*, large_*), not a fuzzer input (a SHA-1 name)
    [[ ! $1 =~ ^[0-9a-f]{40}$ ]]
}

log() { echo "[campaign $(date -u +%H:%M:%S)] $*" >&2; }

for t in "${targets[@]}"; do
    [[ -f $here/fuzz_targets/$t.rs ]] || { echo "campaign.sh: no target $t" >&2; exit 2; }
done

if ((build)); then
    for t in "${targets[@]}"; do
        b=$(build_for "$t")
        log "building $t (${b#*|}${b#*|:+ }--target-dir ${b%%|*})"
        # shellcheck disable=SC2086 # the build settings are words
        (cd "$here" && nice -n "$niceness" cargo +nightly fuzz build ${b#*|} \
            --target-dir "${b%%|*}" "$t") >"$out/build-$t.log" 2>&1 ||
            { tail -20 "$out/build-$t.log" >&2; exit 1; }
    done
fi

# The session targets start from whole honest transcripts (not in git: megabytes each), so
# that the fuzzer reaches every phase of a session; they are recorded fresh.
for t in "${targets[@]}"; do
    case "$t" in
        session_server|session_client)
            log "recording whole session transcripts (large_valid_model*)"
            (cd "$here/.." && nice -n "$niceness" cargo run --release -q -p bunet-fuzz-targets \
                --example seed_corpora sessions) >"$out/seeds.log" 2>&1 ||
                { tail -20 "$out/seeds.log" >&2; exit 1; }
            break ;;
    esac
done

# One target: fuzz a copy of its corpus, then merge into its named seeds.
campaign() {
    local t=$1 dir="$out/$1" flags bin b started wall
    flags=$(flags_for "$t")
    b=$(build_for "$t")
    bin=$(binary_for "$b" "$t")
    rm -rf "$dir"
    mkdir -p "$dir/run" "$dir/artifacts" "$dir/seeds" "$dir/min"
    cp -a "$here/corpus/$t/." "$dir/run/"
    started=$(date +%s)
    log "$t: fuzzing ${seconds}s ($flags)"
    # shellcheck disable=SC2086 # the flags are words
    nice -n "$niceness" "$bin" $flags -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" "$dir/run" >"$dir/fuzz.log" 2>&1 || true
    wall=$(($(date +%s) - started))
    for f in "$here/corpus/$t"/*; do
        is_seed "$(basename "$f")" && cp -a "$f" "$dir/seeds/"
    done
    cp -a "$dir/seeds/." "$dir/min/"
    log "$t: merging"
    # Inputs that add a coverage edge (no hit counts: with them the merge keeps 2-4x more).
    # shellcheck disable=SC2086
    if nice -n "$niceness" "$bin" $flags -merge=1 -use_counters=0 \
        -artifact_prefix="$dir/artifacts/" "$dir/min" "$dir/run" >"$dir/merge.log" 2>&1; then
        touch "$dir/merged"
    else
        log "$t: merge failed (see $dir/merge.log); its corpus will be left alone"
    fi
    # Fuzzer inputs over 64 KB stay out of git.
    find "$dir/min" -regextype posix-extended -type f -size +65536c \
        -regex '.*/[0-9a-f]{40}' -delete
    summarise "$t" "$wall" >"$dir/summary"
    log "$t: done"
}

# One line: wall, executions, exec/s, cov/ft from the seeds and at the end, new units, peak RSS,
# crash/leak/timeout/OOM artifacts, fuzzer inputs kept by the merge.
summarise() {
    local t=$1 wall=$2 dir="$out/$1" logf="$out/$1/fuzz.log"
    statval() { sed -n "s/^stat::$1: *//p" "$logf" | tail -1; }
    covft() { sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/\1 \/ \2/p' | tail -1; }
    local start end kept kept_kb artifacts
    start=$(grep -m1 'INITED' "$logf" | covft || true)
    end=$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|RELOAD)' "$logf" | covft || true)
    artifacts=$(find "$dir/artifacts" -type f | wc -l)
    kept=$(find "$dir/min" -regextype posix-extended -type f -regex '.*/[0-9a-f]{40}' | wc -l)
    kept_kb=$(du -sk --apparent-size "$dir/min" | cut -f1)
    printf '| `%s` | %s s | %s | %s | %s | %s | %s | %s MB | %s | %s + %s seeds, %s KB |\n' \
        "$t" "$wall" "$(statval number_of_executed_units)" "$(statval average_exec_per_sec)" \
        "${start:-?}" "${end:-?}" "$(statval new_units_added)" "$(statval peak_rss_mb)" \
        "$artifacts" "$kept" "$(find "$dir/seeds" -type f | wc -l)" "$kept_kb"
}

for t in "${targets[@]}"; do
    while (($(jobs -rp | wc -l) >= parallel)); do
        wait -n || true
    done
    campaign "$t" &
done
wait

if ((!dry)); then
    for t in "${targets[@]}"; do
        # Replace the fuzzer inputs, keep the named seeds (the large_* ones are not in git).
        [[ -f $out/$t/merged ]] || continue
        find "$here/corpus/$t" -maxdepth 1 -regextype posix-extended -type f \
            -regex '.*/[0-9a-f]{40}' -delete
        find "$out/$t/min" -maxdepth 1 -regextype posix-extended -type f \
            -regex '.*/[0-9a-f]{40}' -exec cp -a {} "$here/corpus/$t/" \;
    done
    log "corpora updated in $here/corpus (review with git status before committing)"
fi

echo "fuzz campaign: ${seconds} s per target, $parallel at a time, nice $niceness; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "FAST_BUILD='$FAST_BUILD' ASAN_BUILD='$ASAN_BUILD'; logs in $out"
echo
echo '| target | wall | executions | exec/s | cov / ft seeds | cov / ft end | new units | peak RSS | crashes, leaks, timeouts, OOM (artifacts) | corpus kept (fuzzer inputs + seeds, size) |'
echo '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
for t in "${targets[@]}"; do
    cat "$out/$t/summary" 2>/dev/null || echo "| \`$t\` | failed: see $out/$t |"
done
