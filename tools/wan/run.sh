#!/usr/bin/env bash
# Emulated links for the two parties: `bunet serve` and `bunet segment` in two network namespaces
# joined by a veth pair, bandwidth limited by the kernel (tbf, both directions) and latency added
# by tools/wan/delay_proxy.py (this kernel has no netem). Each link in LINKS is measured once,
# after a run on the same namespaces with neither limit (the compute baseline); the table written
# to OUT/wan.md puts each measured wall time next to the time model's prediction
#     T = C + 8·B / bandwidth + (F / 2)·RTT
# with C the baseline's wall time, B the bytes both ways and F the flights of both parties (from
# the two parties' reports of the run itself), and next to the overlap bound max(C, 8·B / bw).
# With --jobs J the client runs J sessions at once (`bunet segment --jobs J`): one session's
# transfers overlap another's compute; the server reports of all J sessions are summed. Batches
# (`-- --batch B`, given to both parties) make each flight carry B slices.
#
# Usage (as root; needs ip, tc, python3):
#   tools/wan/run.sh [--size 128] [--slices 8] [--range 3..5] [--backend ot] [--preset q32]
#                    [--links "1gbit:10 100mbit:40"] [--jobs 1] [--out wan-out]
#                    [-- extra segment/serve args, e.g. --chunk 262144 --batch 2]
# Environment: BUNET=path/to/bunet (default: target/release/bunet, built if missing);
#   BUNET_WAN_NS=name (default wan): the namespaces are bunet-NAME-c and bunet-NAME-s, so that
#   two runs on one machine (e.g. two binaries side by side) do not tear down each other's.
set -euo pipefail
cd "$(dirname "$0")/../.."

size=128 slices=8 range=3..5 backend=ot preset=q32 out=wan-out jobs=1
links="1gbit:10 100mbit:40"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --slices) slices=$2; shift 2 ;;
    --range) range=$2; shift 2 ;;
    --backend) backend=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    --links) links=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

bunet=${BUNET:-target/release/bunet}
[ -x "$bunet" ] || cargo build --release -p bunet-harness
bunet=$(realpath "$bunet")
proxy=$(realpath tools/wan/delay_proxy.py)
mkdir -p "$out"
out=$(realpath "$out")

# Namespaces and addresses private to this script (nothing leaves the two namespaces).
ns_tag=${BUNET_WAN_NS:-wan}
ns_c=bunet-$ns_tag-c ns_s=bunet-$ns_tag-s
addr_c=10.253.0.1 addr_s=10.253.0.2 port=7070
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del "$ns_c" 2>/dev/null || true
  ip netns del "$ns_s" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add "$ns_c"
ip netns add "$ns_s"
ip link add veth-bwc netns "$ns_c" type veth peer name veth-bws netns "$ns_s"
ip -n "$ns_c" addr add "$addr_c/30" dev veth-bwc
ip -n "$ns_s" addr add "$addr_s/30" dev veth-bws
for ns in "$ns_c" "$ns_s"; do ip -n "$ns" link set lo up; done
ip -n "$ns_c" link set veth-bwc up
ip -n "$ns_s" link set veth-bws up

# tbf on both ends' egress: RATE in tc's units (100mbit, 1gbit); burst = 10 ms at that rate (at
# least one jumbo GSO segment's worth), queue up to 1 s.
set_rate() {
  local rate=$1
  for pair in "$ns_c veth-bwc" "$ns_s veth-bws"; do
    set -- $pair
    tc -n "$1" qdisc del dev "$2" root 2>/dev/null || true
    if [ "$rate" != none ]; then
      local bps
      bps=$(python3 -c "import sys;u={'kbit':1e3,'mbit':1e6,'gbit':1e9};r=sys.argv[1];print(int(float(r[:-4])*u[r[-4:]]))" "$rate")
      local burst=$(( bps / 8 / 100 > 65536 ? bps / 8 / 100 : 65536 ))
      tc -n "$1" qdisc add dev "$2" root tbf rate "$rate" burst "$burst" latency 1000ms
    fi
  done
}

# The volume: synthetic, generated once.
vol="$out/volume"
[ -f "$vol/ct.nii.gz" ] || "$bunet" generate --size "$size" --slices "$slices" --seed 7 --out "$vol" >/dev/null

# The server, in its namespace, with its per-session report kept.
ip netns exec "$ns_s" "$bunet" serve --insecure --listen "$addr_s:$port" --backend "$backend" \
  --preset "$preset" --report-dir "$out/server-reports" --max-sessions "$((jobs > 4 ? jobs : 4))" \
  "${extra[@]}" >"$out/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -qs listening "$out/serve.log" && break; sleep 0.2; done

# One run over a link: NAME RATE RTT_MS. The client connects to the proxy in its own namespace,
# which forwards over the veth pair to the server.
run_link() {
  local name=$1 rate=$2 rtt=$3
  set_rate "$rate"
  local lport=$((7100 + RANDOM % 800))
  ip netns exec "$ns_c" python3 "$proxy" --listen "127.0.0.1:$lport" --upstream "$addr_s:$port" \
    --delay-ms "$(python3 -c "print($rtt / 2)")" --seconds 7200 >"$out/proxy-$name.log" 2>&1 &
  local proxy_pid=$!
  pids+=($proxy_pid)
  for _ in $(seq 50); do grep -qs "delay proxy" "$out/proxy-$name.log" && break; sleep 0.1; done
  rm -rf "$out/run-$name"
  # Reports written after this marker belong to this run (the names do not say which run).
  touch "$out/.mark-$name"
  local t0 t1
  t0=$(date +%s.%N)
  ip netns exec "$ns_c" "$bunet" segment --insecure --input "$vol/ct.nii.gz" --server "127.0.0.1:$lport" \
    --backend "$backend" --preset "$preset" --slices "$range" --jobs "$jobs" \
    --out "$out/run-$name" "${extra[@]}" >"$out/segment-$name.log" 2>&1
  t1=$(date +%s.%N)
  kill "$proxy_pid" 2>/dev/null || true
  # The server writes one report per session when it ends. A session whose Close the proxy
  # dropped (the client's socket reset with bytes still queued in the proxy) ends in an error on
  # the server and writes none: the table then scales the server's flights by J / reports
  # (every session of a run has the same extents, hence the same flights), and says so.
  for _ in $(seq 100); do
    [ "$(find "$out/server-reports" -name '*.json' -newer "$out/.mark-$name" | wc -l)" -ge "$jobs" ] && break
    sleep 0.1
  done
  local server_reports
  server_reports=$(find "$out/server-reports" -name '*.json' -newer "$out/.mark-$name" | paste -sd, -)
  # No report at all (one session, its Close dropped): every run has the same extents, hence
  # the same flights, so the baseline run's reports stand in, and the script says so.
  if [ -z "$server_reports" ] && [ -n "$base_reports" ]; then
    echo "$name: the server wrote no session report; its flights taken from the baseline run" >&2
    server_reports=$base_reports
  fi
  [ -n "$server_reports" ] || { echo "no server report for $name" >&2; exit 1; }
  [ -n "$base_reports" ] || base_reports=$server_reports
  echo "$name $rate $rtt $(python3 -c "print($t1 - $t0)") $out/run-$name/report.json $server_reports" \
    >>"$out/runs.txt"
}

: >"$out/runs.txt"
base_reports=
run_link loopback none 0
for link in $links; do
  run_link "${link%%:*}-${link##*:}ms" "${link%%:*}" "${link##*:}"
done

python3 - "$out" "$range" "$jobs" <<'PY'
import json, sys
out = sys.argv[1]
jobs = int(sys.argv[3])
a, b_ = (int(v) for v in sys.argv[2].split(".."))
rows = [line.split() for line in open(f"{out}/runs.txt")]
def totals(paths):
    b = f = 0
    for path in paths.split(","):
        r = json.load(open(path))
        b += sum(x["bytes_sent"] + x["bytes_received"] for x in r["blocks"])
        f += sum(x["rounds"] for x in r["blocks"])
    return b, f
units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
base = float(rows[0][3])
lines = ["| link | RTT | bytes (both ways) | flights (both parties) | round trips per slice | measured wall | model C + 8B/bw + F/2·RTT | overlap bound max(C, 8B/bw) | measured / bound |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for name, rate, rtt, wall, client, server in rows:
    wall, rtt = float(wall), float(rtt) / 1000
    b, fc = totals(client)
    _, fs = totals(server)
    written = len(server.split(","))
    if written < jobs:
        print(f"{name}: the server wrote {written} of {jobs} session reports; its flights scaled by {jobs}/{written}")
        fs = round(fs * jobs / written)
    f = fc + fs
    if rate == "none":
        wire = 0.0
    else:
        wire = 8 * b / (float(rate[:-4]) * units[rate[-4:]])
    model = base + wire + f / 2 * rtt
    bound = max(base, wire)
    lines.append(f"| {name} | {rtt*1000:.0f} ms | {b/1e6:,.1f} MB | {f:,} | {f / 2 / (b_ - a):,.0f} | {wall:,.1f} s | "
                 f"{model:,.1f} s | {bound:,.1f} s | {wall/bound:.2f}× |")
table = "\n".join(lines)
open(f"{out}/wan.md", "w").write(table + "\n")
print(table)
PY
