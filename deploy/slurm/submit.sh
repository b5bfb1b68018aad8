#!/bin/bash
# Submits a volume's segmentation to Slurm: a job array of K shards (segment-array.sbatch)
# and a merge (merge.sbatch) that runs only if every shard succeeded (afterok).
#
#   deploy/slurm/submit.sh --input CT.nii.gz --server HOST:PORT --out DIR --shards K \
#       [--only I[,J...]] [--bunet PATH] [--partition P] [--sbatch "OPTIONS"]
#       [-- EXTRA SEGMENT OPTIONS]
#
# --only resubmits just those shards (e.g. after a node failure) and a new merge; shards whose
# directory already verifies are skipped by `bunet segment` itself, so resubmitting all of
# them is also safe. --sbatch passes options to the array's sbatch (e.g. "--cpus-per-task=1").
# Prints "ARRAY_JOB_ID MERGE_JOB_ID".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

input= server= out= shards= only= bunet=bunet partition= sbatch_opts=
while [ $# -gt 0 ]; do
    case $1 in
        --input) input=$2; shift 2 ;;
        --server) server=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --shards) shards=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --bunet) bunet=$2; shift 2 ;;
        --partition) partition=$2; shift 2 ;;
        --sbatch) sbatch_opts=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "submit.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "$input" ] || [ -z "$server" ] || [ -z "$out" ] || [ -z "$shards" ]; then
    echo "usage: submit.sh --input CT --server HOST:PORT --out DIR --shards K [--only I,...] [-- OPTIONS]" >&2
    exit 2
fi
mkdir -p "$out"
input=$(realpath "$input") out=$(realpath "$out")
bunet_path=$(command -v "$bunet" || true)
[ -n "$bunet_path" ] || { echo "submit.sh: $bunet not found" >&2; exit 2; }
array=${only:-0-$(( shards - 1 ))}
common=(--chdir "$out")
[ -n "$partition" ] && common+=(--partition "$partition")
export BUNET=$bunet_path BUNET_INPUT=$input BUNET_SERVER=$server BUNET_OUT=$out
export BUNET_SHARDS=$shards BUNET_ARGS="$*"
# shellcheck disable=SC2086  # sbatch_opts is a list of options, split on purpose
array_id=$(sbatch --parsable "${common[@]}" $sbatch_opts --array="$array" --export=ALL \
    "$here/segment-array.sbatch")
array_id=${array_id%%;*}
merge_id=$(sbatch --parsable "${common[@]}" --dependency="afterok:$array_id" --export=ALL \
    "$here/merge.sbatch")
merge_id=${merge_id%%;*}
echo "$array_id $merge_id"
