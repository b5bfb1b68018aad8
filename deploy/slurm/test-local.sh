#!/bin/bash
# The real Slurm test of issue #15, on this one machine:
#   1. installs slurm-wlm and munge from the distribution (apt-get) if missing;
#   2. starts munged with a fresh key, slurmctld and slurmd with a generated one-node
#      configuration (this host, CPUs=2) — all under a private directory, nothing in /etc;
#   3. starts a local `bunet serve` (release build, --backend ot, one session slot so that
#      concurrent shards really meet "busy" and back off) and generates a small volume;
#   4. segments it in one process (the reference), then submits a 4-task array + dependent
#      merge (submit.sh), waits, and checks the merged mask equals the reference bit for bit;
#   5. submits the array again into a fresh directory, cancels one task mid-run (scancel
#      JOB_TASK), lets the others finish, resubmits only that shard with a new merge, and checks
#      the same mask again;
#   6. stops every daemon it started.
# Needs root (apt-get, daemons). Takes a few minutes. Usage: deploy/slurm/test-local.sh [WORKDIR]
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here="$repo/deploy/slurm"
work=${1:-$(mktemp -d /tmp/bunet-slurm-test.XXXXXX)}
mkdir -p "$work"
work=$(realpath "$work")
size=64 slices=8 shards=4 victim=2
log() { echo "[test-local $(date -u +%H:%M:%S)] $*"; }
pids=()
cleanup() {
    local rc=$?
    log "stopping the daemons"
    [ -n "${SLURM_CONF:-}" ] && scancel --user=root >/dev/null 2>&1 || true
    for ((n = ${#pids[@]} - 1; n >= 0; n--)); do
        kill "${pids[n]}" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    [ -f "$work/munge/munged.pid" ] && kill "$(cat "$work/munge/munged.pid")" 2>/dev/null || true
    log "exit $rc (logs in $work)"
}
trap cleanup EXIT

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
log "$(slurmctld -V), $(munged --version 2>&1 | head -1)"

# 2. munge and Slurm, private to $work.
mkdir -p "$work/munge" "$work/slurm/state" "$work/slurm/spool" "$work/logs"
chmod 700 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munge_socket="$work/munge/munge.socket"
munged --force --key-file="$work/munge/munge.key" --socket="$munge_socket" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/logs/munged.log" \
    --seed-file="$work/munge/munged.seed"
host=$(hostname -s)
export SLURM_CONF="$work/slurm/slurm.conf"
cat >"$SLURM_CONF" <<CONF
ClusterName=bunet-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$munge_socket
CredType=cred/munge
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$work/slurm/state
SlurmdSpoolDir=$work/slurm/spool
SlurmctldPidFile=$work/slurm/slurmctld.pid
SlurmdPidFile=$work/slurm/slurmd.pid
SlurmctldLogFile=$work/logs/slurmctld.log
SlurmdLogFile=$work/logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
MinJobAge=3600
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -D -f "$SLURM_CONF" >"$work/logs/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$work/logs/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 60); do
    sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
    sleep 1
done
sinfo -h -o '%T' | grep -qE '^(idle|mixed|allocated)' || {
    log "the node never came up"; sinfo; tail -20 "$work/logs/slurmctld.log"; exit 1
}
log "slurm up: $(sinfo -h -o '%P %D %T %c CPUs')"

# 3. bunet: release build, a server with one slot, a small volume.
bunet="$repo/target/release/bunet"
(cd "$repo" && cargo build --release -q -p bunet-harness)
"$bunet" serve --insecure --listen 127.0.0.1:0 --backend ot --max-sessions 1 --retry-after 5 \
    >"$work/logs/serve.out" 2>"$work/logs/serve.err" &
pids+=($!)
for _ in $(seq 100); do
    grep -q '^listening on ' "$work/logs/serve.out" 2>/dev/null && break
    sleep 0.2
done
addr=$(sed -n 's/^listening on //p' "$work/logs/serve.out")
[ -n "$addr" ] || { log "bunet serve did not start"; cat "$work/logs/serve.err"; exit 1; }
log "bunet serve on $addr: $(grep 'memory budget' "$work/logs/serve.err" | sed 's/^bunet serve: //')"
"$bunet" probe --insecure "$addr"
"$bunet" generate --size "$size" --slices "$slices" --seed 7 --out "$work/vol" >/dev/null
ct="$work/vol/ct.nii.gz"

# 4. The reference in one process, then the array and the merge.
log "reference: one process, $slices slices of ${size}x${size}"
time "$bunet" segment --insecure --input "$ct" --server "$addr" --out "$work/reference" --backend ot \
    >"$work/logs/reference.out" 2>&1
same_mask() { # same_mask A B: the decompressed NIfTI files, else the voxels after the header
    if cmp -s <(gzip -dc "$1") <(gzip -dc "$2"); then
        echo "identical files"
    elif cmp -s <(gzip -dc "$1" | tail -c +353) <(gzip -dc "$2" | tail -c +353); then
        echo "identical voxels (headers differ)"
    else
        return 1
    fi
}
wait_jobs() { # wait_jobs ID...: until none is pending or running
    while [ -n "$(squeue -h -j "$(IFS=,; echo "$*")" -o %i 2>/dev/null)" ]; do sleep 2; done
}
job_states() { sacct_like "$@"; }
sacct_like() { # the final state of each job (scontrol keeps finished jobs for MinJobAge)
    for j in "$@"; do
        scontrol -o show job "$j" 2>/dev/null | tr ' ' '\n' | grep -E '^(JobId|ArrayTaskId|JobState|ExitCode)=' | paste -sd' '
    done
}
submit() { # submit OUT [--only I]
    local out=$1; shift
    BUNET_TRIES=60 BUNET_BACKOFF=5 "$here/submit.sh" --bunet "$bunet" --input "$ct" \
        --server "$addr" --out "$out" --shards "$shards" --sbatch "--cpus-per-task=1" "$@" \
        -- --insecure --backend ot
}

log "submitting $shards shards + merge"
read -r array merge < <(submit "$work/run1")
log "array job $array, merge job $merge"
time wait_jobs "$array" "$merge"
job_states "$array" "$merge"
busy=$(grep -h 'server busy' "$work"/run1/bunet-shard-*.out | wc -l || true)
log "busy answers met and retried by the array's tasks: $busy"
test -f "$work/run1/merged/mask.nii.gz" || { log "no merged mask"; cat "$work"/run1/*.out; exit 1; }
cat "$work"/run1/bunet-merge-*.out
verdict=$(same_mask "$work/reference/mask.nii.gz" "$work/run1/merged/mask.nii.gz") || {
    log "FAIL: the merged mask differs from the one-process mask"; exit 1; }
log "PASS: merged mask of $shards shards = one-process mask ($verdict)"

# 5. Again into a fresh directory, with task $victim cancelled mid-run and resubmitted alone.
log "submitting $shards shards + merge again; task $victim will be cancelled mid-run"
read -r array2 merge2 < <(submit "$work/run2")
log "array job $array2, merge job $merge2"
until [ "$(squeue -h -j "${array2}_${victim}" -o %T 2>/dev/null)" = RUNNING ]; do sleep 1; done
# Let it get into its session (the set-up alone takes longer than this), then cancel it.
sleep 15
log "scancel ${array2}_${victim} (state: $(squeue -h -j "${array2}_${victim}" -o %T))"
scancel "${array2}_${victim}"
# The merge's afterok can no longer be met: cancel it once the other tasks are done.
while [ -n "$(squeue -h -j "$array2" -t PENDING,RUNNING -o %i 2>/dev/null | grep -v "^${merge2}$")" ]; do
    sleep 2
done
scancel "$merge2" 2>/dev/null || true
job_states "$array2" "$merge2"
if [ -f "$work/run2/shard-$victim/manifest.json" ]; then
    log "FAIL: the cancelled shard left a complete-looking manifest"; exit 1
fi
log "shard $victim has no manifest after the cancel: $(ls -A "$work/run2/shard-$victim" 2>/dev/null | paste -sd' ' || echo 'no directory')"
log "resubmitting only shard $victim + a new merge"
read -r array3 merge3 < <(submit "$work/run2" --only "$victim")
log "array job $array3, merge job $merge3"
time wait_jobs "$array3" "$merge3"
job_states "$array3" "$merge3"
test -f "$work/run2/merged/mask.nii.gz" || { log "no merged mask"; exit 1; }
cat "$work"/run2/bunet-merge-"$merge3".out
verdict=$(same_mask "$work/reference/mask.nii.gz" "$work/run2/merged/mask.nii.gz") || {
    log "FAIL: the mask after the resubmitted shard differs"; exit 1; }
log "PASS: after cancelling shard $victim and resubmitting it alone, the merged mask = one-process mask ($verdict)"
grep -c 'not admitted' "$work/logs/serve.err" | xargs -I{} echo "[test-local] server: {} busy answers in all"
log "all checks passed"
