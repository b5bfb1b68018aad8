#!/bin/bash
# Runs a volume's shards and the merge on Kubernetes (namespace from the current context):
# the Indexed Job, a wait for its completion, then the merge Job. The serve Deployment,
# Service and the PVC (with the CT at /data/ct.nii.gz) must exist: kubectl apply -f
# storage.yaml -f serve.yaml. Usage: deploy/k8s/run.sh [TIMEOUT, default 24h]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
timeout=${1:-24h}
kubectl delete job bunet-segment bunet-merge --ignore-not-found
kubectl apply -f "$here/segment-job.yaml"
kubectl wait --for=condition=complete --timeout="$timeout" job/bunet-segment
kubectl apply -f "$here/merge-job.yaml"
kubectl wait --for=condition=complete --timeout=1h job/bunet-merge
kubectl logs job/bunet-merge
