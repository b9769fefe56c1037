#!/usr/bin/env bash
# netmesh beside its baselines on one machine, in one go:
#   quic     quinn 0.11, ChaCha20-Poly1305, two processes      (quic-bench quic)
#   udp      the same datagrams netmesh sends, no crypto        (quic-bench udp)
#   netmesh  `netmesh bench` from the main workspace, if that binary exists on this branch
# for 64-byte and 1 KiB events, ROUNDS rounds interleaved (each round runs every tool once
# per size, so drift on a shared machine hits all of them alike), then a table of medians,
# ranges and ratios (the ratio columns are medians of per-round ratios).
#
# Two tables: events/s (wall clock, first to last event at the receiver, as each tool
# reports it) and events per CPU-second (events / user+sys CPU of the whole run, both ends
# and any child process, from /usr/bin/time). On a shared machine where other work takes
# the CPUs, wall-clock rates measure the load as much as the code; CPU-normalised rates
# do not (they include setup: key generation, handshake, socket set-up, a few ms).
#
#   tools/quic-bench/compare.sh [ROUNDS]          default 5 rounds
#   EVENTS_64=20000000 EVENTS_1K=2000000          events per run and size
#   QUIC_FLAGS="--streams 4 --mtu 9000"           extra flags for the quic runs
#   UDP_FLAGS="--window 64"                       extra flags for the udp runs
#   NETMESH_FLAGS="--senders 2"                   extra flags for netmesh bench
#   NETMESH=/path/to/netmesh                      a netmesh binary built elsewhere (else: built here)
#   LOOPBACK=0                                    skip the loopback example
#
# Until `netmesh bench` exists, the main workspace's loopback example (the previous main
# job: one process, sender threads and a receiver thread, 8 KiB datagrams, a credit
# window) stands in as a second netmesh column when it builds: `cargo build --release
# --example loopback` from the repository root.
set -euo pipefail

rounds=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
events_64=${EVENTS_64:-20000000}
events_1k=${EVENTS_1K:-1000000}

cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bench="$here/target/release/quic-bench"

netmesh=${NETMESH:-}
if [ -n "$netmesh" ]; then
    [ -x "$netmesh" ] || { echo "compare: NETMESH=$netmesh is not an executable" >&2; exit 2; }
elif (cd "$root" && cargo build --release --quiet --bin netmesh) >/dev/null 2>&1 \
    && [ -x "$root/target/release/netmesh" ]; then
    netmesh="$root/target/release/netmesh"
else
    echo "compare: no netmesh binary on this branch (cargo build --bin netmesh failed); netmesh column skipped" >&2
fi

loopback=""
if [ "${LOOPBACK:-1}" != 0 ] && (cd "$root" && cargo build --release --quiet --example loopback) >/dev/null 2>&1 \
    && [ -x "$root/target/release/examples/loopback" ]; then
    loopback="$root/target/release/examples/loopback"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# run NAME SIZE ROUND COMMAND...: records events_per_s of the JSON line, or FAIL.
run() {
    local name=$1 size=$2 round=$3
    shift 3
    local json
    if json=$(/usr/bin/time -o "$out/time" -f '%U %S' "$@" --json 2>"$out/stderr" | tail -n 1) \
        && [ -n "$json" ]; then
        local rate events cpu per_cpu
        rate=$(jq -r '.events_per_s' <<<"$json")
        events=$(jq -r '.events' <<<"$json")
        cpu=$(tail -n 1 "$out/time" | awk '{ print $1 + $2 }')
        per_cpu=$(awk -v e="$events" -v c="$cpu" 'BEGIN { if (c > 0) print e / c; else print "FAIL" }')
        echo "$round $rate" >>"$out/$name-$size"
        echo "$round $per_cpu" >>"$out/cpu-$name-$size"
        printf '  %-8s %5s B  round %s: %12.0f events/s, %5.2f CPU-s, %12.0f events per CPU-second\n' \
            "$name" "$size" "$round" "$rate" "$cpu" "$per_cpu"
    else
        echo "$round FAIL" >>"$out/$name-$size"
        echo "$round FAIL" >>"$out/cpu-$name-$size"
        printf '  %-8s %5s B  round %s: FAILED (%s)\n' "$name" "$size" "$round" "$(tail -n 1 "$out/stderr")"
    fi
}

# run_loopback SIZE ROUND EVENTS: the loopback example prints text, not JSON.
run_loopback() {
    local size=$1 round=$2 events=$3 text
    if text=$(/usr/bin/time -o "$out/time" -f '%U %S' "$loopback" --events "$events" --event-size "$size" 2>"$out/stderr") \
        && grep -q '^result *OK' <<<"$text"; then
        local rate cpu per_cpu
        rate=$(awk '/^rate / { print $4 }' <<<"$text")
        cpu=$(tail -n 1 "$out/time" | awk '{ print $1 + $2 }')
        per_cpu=$(awk -v e="$events" -v c="$cpu" 'BEGIN { if (c > 0) print e / c; else print "FAIL" }')
        echo "$round $rate" >>"$out/loopback-$size"
        echo "$round $per_cpu" >>"$out/cpu-loopback-$size"
        printf '  %-8s %5s B  round %s: %12.0f events/s, %5.2f CPU-s, %12.0f events per CPU-second\n' \
            loopback "$size" "$round" "$rate" "$cpu" "$per_cpu"
    else
        echo "$round FAIL" >>"$out/loopback-$size"
        echo "$round FAIL" >>"$out/cpu-loopback-$size"
        printf '  %-8s %5s B  round %s: FAILED (%s)\n' loopback "$size" "$round" "$(tail -n 1 "$out/stderr")"
    fi
}

echo "compare: $rounds round(s) on $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
    for size in 64 1024; do
        if [ "$size" = 64 ]; then events=$events_64; else events=$events_1k; fi
        # shellcheck disable=SC2086
        run quic "$size" "$round" "$bench" quic --size "$size" --events "$events" ${QUIC_FLAGS:-}
        # shellcheck disable=SC2086
        run udp "$size" "$round" "$bench" udp --size "$size" --events "$events" ${UDP_FLAGS:-}
        if [ -n "$netmesh" ]; then
            # shellcheck disable=SC2086
            run netmesh "$size" "$round" "$netmesh" bench --size "$size" --events "$events" ${NETMESH_FLAGS:-}
        fi
        if [ -n "$loopback" ]; then
            run_loopback "$size" "$round" "$events"
        fi
    done
done
echo "compare: load average after $(cut -d' ' -f1-3 /proc/loadavg)"

# median FILE...: median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rates() { [ -f "$out/$1" ] && awk '$2 != "FAIL" { print $2 }' "$out/$1" || true; }
cell() {
    local m lo hi
    m=$(rates "$1" | median)
    [ "$m" = "-" ] && { echo "-"; return; }
    lo=$(rates "$1" | sort -g | head -n 1)
    hi=$(rates "$1" | sort -g | tail -n 1)
    awk -v m="$m" -v lo="$lo" -v hi="$hi" 'BEGIN { printf "%.2fM (%.2f-%.2f)", m / 1e6, lo / 1e6, hi / 1e6 }'
}
# ratio A B: median over rounds where both ran of A/B.
ratio() {
    [ -f "$out/$1" ] && [ -f "$out/$2" ] || { echo "-"; return; }
    join "$out/$1" "$out/$2" | awk '$2 != "FAIL" && $3 != "FAIL" && $3 > 0 { print $2 / $3 }' | median \
        | awk '{ if ($1 == "-") print "-"; else printf "%.2fx", $1 }'
}

table() {
    local prefix=$1 unit=$2 name
    for name in netmesh loopback; do
        [ "$name" = loopback ] && [ -z "$loopback" ] && continue
        [ "$name" = netmesh ] && [ -z "$netmesh" ] && continue
        echo
        echo "| events | $name $unit | quinn $unit | bare UDP $unit | $name/quinn | $name/UDP | quinn/UDP |"
        echo "|---|---|---|---|---|---|---|"
        for size in 64 1024; do
            echo "| $size B | $(cell "${prefix}$name-$size") | $(cell "${prefix}quic-$size") | $(cell "${prefix}udp-$size") |" \
                "$(ratio "${prefix}$name-$size" "${prefix}quic-$size") | $(ratio "${prefix}$name-$size" "${prefix}udp-$size") |" \
                "$(ratio "${prefix}quic-$size" "${prefix}udp-$size") |"
        done
    done
}
table "" "events/s"
table "cpu-" "events/CPU-s"
echo
echo "medians of $rounds round(s) (min-max); ratios: medians of same-round ratios"
if grep -qs FAIL "$out"/*; then
    echo "compare: some runs FAILED (see above)" >&2
    exit 1
fi
