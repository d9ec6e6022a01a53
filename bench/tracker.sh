#!/usr/bin/env bash
# `shoal tracker` against opentracker on loopback, in one run: memory after TRACKER_PEERS
# distinct peers (announced once each over UDP), then announces per second over UDP, HTTP
# keep-alive and HTTP with one connection per announce, each TRACKER_RUNS times (median).
# Both trackers run at once, pinned to CPU 0, and the load generator to CPU 1 (taskset);
# only one tracker is loaded at a time, in turn, each measurement after a quiet second.
# opentracker is Debian's build (whitelist mode: the bench's info-hashes are listed;
# shoal gets the same --whitelist so both do the same work).
#
# Usage: bench/tracker.sh SHOAL TRACKER_LOAD RESULTS_DIR
# Environment (defaults): TRACKER_PEERS (1000000), TRACKER_TORRENTS (1000), TRACKER_SECONDS
# (10), TRACKER_RUNS (3), TRACKER_WINDOW (128 UDP announces in flight), TRACKER_CONNECTIONS
# (32 HTTP connections), TRACKER_SOURCES (16 source addresses 127.0.0.10..),
# TRACKER_ONLY (shoal or opentracker: run one of them)
set -euo pipefail

shoal=$(realpath "$1")
load=$(realpath "$2")
results=$3
peers=${TRACKER_PEERS:-1000000}
torrents=${TRACKER_TORRENTS:-1000}
seconds=${TRACKER_SECONDS:-10}
runs=${TRACKER_RUNS:-3}
window=${TRACKER_WINDOW:-128}
conns=${TRACKER_CONNECTIONS:-32}
sources=${TRACKER_SOURCES:-16}
only=${TRACKER_ONLY:-}
mkdir -p "$results"

work=$(mktemp -d /tmp/shoal-bench-tracker.XXXXXX)
chmod 755 "$work"  # opentracker drops to nobody and must read the whitelist
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

pin_tracker=()
pin_load=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  pin_tracker=(taskset -c 0)
  pin_load=(taskset -c 1)
fi

free_port() {
  python3 -c '
import random, socket
while True:
    p = random.randint(20000, 60000)
    try:
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            t.bind(("127.0.0.1", p)); u.bind(("127.0.0.1", p))
        print(p); break
    except OSError:
        pass'
}

wait_tcp() {
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "tracker.sh: nothing listens on port $1" >&2
  return 1
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, in clock ticks
hz=$(getconf CLK_TCK)

# Runs the load generator; adds to its JSON line the share of a core the tracker used.
measure() {  # PID OUT ARGS...
  local pid=$1 out=$2 t0 t1 line
  shift 2
  t0=$(cpu_ticks "$pid")
  line=$("${pin_load[@]}" "$load" "$@")
  t1=$(cpu_ticks "$pid")
  line=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["tracker_cpu"]=round((int(sys.argv[2])-int(sys.argv[3]))/int(sys.argv[4])/r["seconds"],2); print(json.dumps(r))' \
    "$line" "$t1" "$t0" "$hz")
  echo "$line" | tee -a "$out" >&2
}

"$load" hashes --torrents "$torrents" >"$work/whitelist.txt"
chmod 644 "$work/whitelist.txt"

# Waits (at most 30 s) for a second in which the machine is nearly idle, so that a
# neighbour's burst does not land inside a measurement; says so when it never comes.
wait_idle() {
  local i b0 b1
  for ((i = 0; i < 30; i++)); do
    b0=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat)
    sleep 1
    b1=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat)
    if [ $((b1 - b0)) -le $((hz / 10)) ]; then return; fi
  done
  echo "tracker.sh: warning: the machine did not go idle; this measurement may be disturbed" >&2
}

names=()
declare -A pid_of port_of
if [ -z "$only" ] || [ "$only" = shoal ]; then
  port=$(free_port)
  "${pin_tracker[@]}" "$shoal" tracker --port "$port" --bind 127.0.0.1 --whitelist "$work/whitelist.txt" \
    >"$work/shoal.log" 2>&1 &
  pid_of[shoal]=$!
  port_of[shoal]=$port
  pids+=("$!")
  names+=(shoal)
fi
if [ -z "$only" ] || [ "$only" = opentracker ]; then
  if command -v opentracker >/dev/null 2>&1; then
    port=$(free_port)
    # -A: loopback may read /stats (peer counts, to confirm the fill).
    "${pin_tracker[@]}" opentracker -i 127.0.0.1 -p "$port" -P "$port" -w "$work/whitelist.txt" -A 127.0.0.1 \
      -u nobody -d / >"$work/opentracker.log" 2>&1 &
    pid_of[opentracker]=$!
    port_of[opentracker]=$port
    pids+=("$!")
    names+=(opentracker)
  else
    echo "tracker.sh: opentracker is not installed; shoal only" >&2
  fi
fi
for n in "${names[@]}"; do
  wait_tcp "${port_of[$n]}"
  : >"$results/tracker-$n.jsonl"
done
sleep 0.5

# Memory: each tracker gets every peer once.
for n in "${names[@]}"; do
  pid=${pid_of[$n]} port=${port_of[$n]} out="$results/tracker-$n.jsonl"
  rss0=$(rss_kib "$pid")
  echo "== $n: filling with $peers peers in $torrents torrents (UDP, event=started)" >&2
  wait_idle
  measure "$pid" "$out" udp --port "$port" --fill --peers "$peers" --torrents "$torrents" --window "$window" \
    --sources "$sources"
  sleep 1
  rss1=$(rss_kib "$pid")
  echo "{\"mode\":\"memory\",\"rss_before_kib\":$rss0,\"rss_after_kib\":$rss1,\"peers\":$peers}" | tee -a "$out" >&2
  if [ "$n" = shoal ]; then
    printf '{"mode":"stats","stats":%s}\n' "$(curl -s "http://127.0.0.1:$port/stats")" | tee -a "$out" >&2
  else
    printf '{"mode":"stats","raw":%s}\n' \
      "$(curl -s "http://127.0.0.1:$port/stats?mode=peer" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" |
      tee -a "$out" >&2
  fi
done

# Speed: the same measurement on each tracker in turn (ABAB...), so that a disturbance of
# the shared machine tends to hit both.
for r in $(seq "$runs"); do
  for mode in udp http http-close; do
    for n in "${names[@]}"; do
      pid=${pid_of[$n]} port=${port_of[$n]} out="$results/tracker-$n.jsonl"
      echo "== $n: $mode, run $r of $runs, ${seconds}s" >&2
      wait_idle
      case $mode in
        udp) measure "$pid" "$out" udp --port "$port" --seconds "$seconds" --peers "$peers" --torrents "$torrents" \
          --window "$window" --sources "$sources" ;;
        http) measure "$pid" "$out" http --port "$port" --seconds "$seconds" --peers "$peers" --torrents "$torrents" \
          --connections "$conns" --sources "$sources" ;;
        http-close) measure "$pid" "$out" http --close --port "$port" --seconds "$seconds" --peers "$peers" \
          --torrents "$torrents" --connections "$conns" --sources "$sources" ;;
      esac
    done
  done
done
for n in "${names[@]}"; do
  echo "{\"mode\":\"final\",\"rss_kib\":$(rss_kib "${pid_of[$n]}")}" | tee -a "$results/tracker-$n.jsonl" >&2
done

python3 "$(dirname "$0")/summarize_tracker.py" "$results" "$peers" "$torrents" "$seconds" "$runs"
