#!/usr/bin/env bash
# The endpoint beside its baselines, interleaved so that a shared machine's load hits all
# alike: quinn 0.11 (tools/quic-bench, two processes), the bare-UDP ceiling (same
# datagrams, no crypto), `netmesh bench`, and netmesh-udp's endpoint_bench (one
# process, real handshake and sockets; events through the queue and through a handler).
# For 64-byte and 1 KiB events. Prints events/s (wall clock, first to last event) and
# events per CPU-second (user+sys of the whole run, both ends).
#
#   crates/netmesh-udp/bench.sh [ROUNDS]        default 3
#   QUIC_BENCH=/path/to/quic-bench              built from tools/quic-bench if unset
set -euo pipefail
rounds=${1:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release --quiet -p netmesh-udp --examples
cargo build --release --quiet --bin netmesh
quic=${QUIC_BENCH:-}
if [ -z "$quic" ] && [ -f tools/quic-bench/Cargo.toml ]; then
    cargo build --release --quiet --manifest-path tools/quic-bench/Cargo.toml
    quic=tools/quic-bench/target/release/quic-bench
fi
ex=target/release/examples
t=$(mktemp)
trap 'rm -f "$t"' EXIT

# measure NAME EVENTS COMMAND...: runs it, prints the wall-clock rate the command reports
# (its first number followed by "events/s" or "events_per_s") and events per CPU-second.
measure() {
    local name=$1 events=$2 out rate cpu
    shift 2
    out=$(/usr/bin/time -o "$t" -f '%U %S' "$@" 2>&1) || { echo "  $name: FAILED"; return; }
    rate=$(grep -oE '"events_per_s":[0-9.e+]+|[0-9.]+ M events/s|[0-9]+ events/s' <<<"$out" | tail -n 1 \
        | awk '{ gsub(/"events_per_s":/, ""); if ($2 == "M") print $1 * 1e6; else print $1 + 0 }')
    cpu=$(awk '{ print $1 + $2 }' "$t")
    awk -v n="$name" -v r="$rate" -v e="$events" -v c="$cpu" \
        'BEGIN { printf "  %-26s %7.2f M events/s   %5.2f CPU-s   %7.2f M events per CPU-s\n", n, r / 1e6, c, e / c / 1e6 }'
}

echo "bench: $rounds round(s), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for round in $(seq "$rounds"); do
    echo "round $round (load $(cut -d' ' -f1 /proc/loadavg))"
    for size in 64 1024; do
        if [ "$size" = 64 ]; then n=20000000; else n=2000000; fi
        [ -n "$quic" ] && measure "quinn $size B" $n "$quic" quic --size $size --events $n --json
        [ -n "$quic" ] && measure "bare UDP $size B" $n "$quic" udp --size $size --events $n --json
        measure "netmesh bench $size B" $n target/release/netmesh bench --events $n --size $size --json
        measure "endpoint queue $size B" $n $ex/endpoint_bench $n $size 1
        measure "endpoint handler $size B" $n $ex/endpoint_bench $n $size 1 --callback
        measure "endpoint reliable $size B" $n $ex/endpoint_bench $n $size 1 --callback --reliable
    done
done
