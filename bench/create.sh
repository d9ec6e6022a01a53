#!/usr/bin/env bash
# `shoal create` against mktorrent 1.1 on one file of random data, same piece size,
# warm page cache, alternating runs. Prints a Markdown table (median and min wall time,
# user+sys CPU, ratio to mktorrent) and keeps the raw runs in OUT_DIR/create-runs.tsv.
#
# Usage: bench/create.sh SHOAL_BINARY [OUT_DIR]
# Environment:
#   CREATE_SIZE_MIB   size of the test file (default 1024, i.e. 1 GiB)
#   CREATE_RUNS       runs per tool (default 7)
#   CREATE_PIECE_EXP  piece size as a power of two (default 18, i.e. 256 KiB)
#   CREATE_THREADS    hashing threads for both tools (default: nproc)
#   CREATE_TOOLS      which rows to run (default "mktorrent shoal-v1 shoal-hybrid shoal-v2")
#   CREATE_MAX_OTHER  a run during which other processes used more than this many CPU
#                     seconds is thrown away and repeated, up to 5 times (default 0.05;
#                     set it high to keep every run); the raw file keeps every attempt
#   TMPDIR            where the test file goes (default /tmp); it is deleted at exit
set -euo pipefail

shoal=$(realpath "${1:?usage: bench/create.sh SHOAL_BINARY [OUT_DIR]}")
out_dir=$(realpath -m "${2:-.}")
size_mib=${CREATE_SIZE_MIB:-1024}
runs=${CREATE_RUNS:-7}
piece_exp=${CREATE_PIECE_EXP:-18}
threads=${CREATE_THREADS:-$(nproc)}
read -r -a tools <<<"${CREATE_TOOLS:-mktorrent shoal-v1 shoal-hybrid shoal-v2}"
piece=$((1 << piece_exp))

for cmd in mktorrent /usr/bin/time /usr/bin/python3; do
  command -v "$cmd" >/dev/null || { echo "create.sh: $cmd is missing (run scripts/install-deps --bench)" >&2; exit 1; }
done
mkdir -p "$out_dir"
work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-create-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="$work/random-${size_mib}MiB.bin"

echo "create.sh: writing ${size_mib} MiB of random data to $data" >&2
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$data"
# Warm the page cache so every run reads from memory, not from the disk.
cat "$data" >/dev/null
cat "$data" >/dev/null

command_for() {
  local o="$work/$1.torrent"
  case "$1" in
    mktorrent) echo "mktorrent -l $piece_exp -t $threads -d -o $o $data" ;;
    shoal-v1) echo "$shoal create --v1 --piece-size $piece --threads $threads --no-date -f -o $o $data" ;;
    shoal-hybrid) echo "$shoal create --piece-size $piece --threads $threads --no-date -f -o $o $data" ;;
    shoal-v2) echo "$shoal create --v2 --piece-size $piece --threads $threads --no-date -f -o $o $data" ;;
    *) echo "create.sh: unknown tool $1" >&2; exit 2 ;;
  esac
}

max_other=${CREATE_MAX_OTHER:-0.05}
hz=$(getconf CLK_TCK)
# Busy CPU time of the whole machine so far, in clock ticks (all but idle and iowait).
busy_ticks() {
  local _cpu u n s idle iow irq sirq steal _rest
  read -r _cpu u n s idle iow irq sirq steal _rest </proc/stat
  echo $((u + n + s + irq + sirq + steal))
}

# Waits (at most 60 s) for a second in which the rest of the machine stays nearly idle.
wait_idle() {
  local i b0 b1
  for ((i = 0; i < 60; i++)); do
    b0=$(busy_ticks)
    sleep 1
    b1=$(busy_ticks)
    if [ $((b1 - b0)) -le $((hz / 20)) ]; then return; fi
  done
}

runs_file="$out_dir/create-runs.tsv"
printf 'tool\trun\tattempt\twall_s\tuser_s\tsys_s\tother_cpu_s\tkept\n' >"$runs_file"
n=${#tools[@]}
discarded=0
for ((r = 1; r <= runs; r++)); do
  # Rotate the starting tool each round so no tool always runs right after another.
  for ((k = 0; k < n; k++)); do
    tool=${tools[$(((r + k) % n))]}
    read -r -a cmd <<<"$(command_for "$tool")"
    for ((attempt = 1; attempt <= 5; attempt++)); do
      rm -f "$work/$tool.torrent"
      wait_idle
      b0=$(busy_ticks)
      t0=$(date +%s%N)
      /usr/bin/time -f '%U %S' -o "$work/time.txt" "${cmd[@]}" >/dev/null 2>"$work/stderr.txt" || {
        echo "create.sh: $tool failed:" >&2; cat "$work/stderr.txt" >&2; exit 1; }
      t1=$(date +%s%N)
      b1=$(busy_ticks)
      read -r user sys <"$work/time.txt"
      wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
      # CPU the rest of the machine used meanwhile: a busy neighbour skews the wall time.
      other=$(awk -v b="$((b1 - b0))" -v hz="$hz" -v u="$user" -v s="$sys" \
        'BEGIN { o = b / hz - u - s; printf "%.2f", o < 0 ? 0 : o }')
      kept=yes
      if [ "$attempt" -lt 5 ] && awk -v o="$other" -v m="$max_other" 'BEGIN { exit !(o > m) }'; then kept=no; fi
      printf '%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$r" "$attempt" "$wall" "$user" "$sys" "$other" "$kept" \
        >>"$runs_file"
      note=""
      if [ "$kept" = no ]; then note=" (disturbed, repeated)"; fi
      echo "create.sh: round $r $tool ${wall}s wall, ${user}s user, ${sys}s sys, others ${other}s CPU$note" >&2
      if [ "$kept" = yes ]; then break; fi
      discarded=$((discarded + 1))
    done
  done
done

# Same bytes hashed the same way: the v1 piece hashes of shoal and mktorrent must match.
check="not run"
if [ -f "$work/mktorrent.torrent" ] && [ -f "$work/shoal-v1.torrent" ]; then
  check=$(/usr/bin/python3 - "$work/mktorrent.torrent" "$work/shoal-v1.torrent" <<'PY'
import sys
import libtorrent as lt
a, b = (lt.torrent_info(p) for p in sys.argv[1:3])
print("identical v1 info-hash" if str(a.info_hash()) == str(b.info_hash()) else "DIFFERENT v1 info-hash")
PY
)
fi

/usr/bin/python3 - "$runs_file" "$size_mib" "$piece" "$threads" "$check" "$discarded" "${tools[@]}" <<'PY'
import csv
import statistics
import sys

runs_file, size_mib, piece, threads, check, discarded = sys.argv[1:7]
tools = sys.argv[7:]
rows = [r for r in csv.DictReader(open(runs_file), delimiter="\t") if r["kept"] == "yes"]
labels = {
    "mktorrent": "mktorrent 1.1 (v1, SHA-1)",
    "shoal-v1": "shoal create --v1 (SHA-1)",
    "shoal-hybrid": "shoal create (hybrid: SHA-1 + SHA-256)",
    "shoal-v2": "shoal create --v2 (SHA-256)",
}
stats = {}
for t in tools:
    w = [float(r["wall_s"]) for r in rows if r["tool"] == t]
    c = [float(r["user_s"]) + float(r["sys_s"]) for r in rows if r["tool"] == t]
    stats[t] = (statistics.median(w), min(w), statistics.median(c), len(w))
ref = stats.get("mktorrent")
mib = int(size_mib)
print(f"{mib} MiB random file, piece size {int(piece) // 1024} KiB, {threads} threads, warm page cache; "
      f"shoal --v1 vs mktorrent: {check}; {discarded} disturbed run(s) repeated")
print()
print("| tool | runs | median wall (s) | min wall (s) | median user+sys (s) | MiB/s (median) | median ratio to mktorrent | min ratio to mktorrent |")
print("|---|---|---|---|---|---|---|---|")
for t in tools:
    med, mn, cpu, n = stats[t]
    rmed = f"{med / ref[0]:.2f}" if ref else "-"
    rmin = f"{mn / ref[1]:.2f}" if ref else "-"
    print(f"| {labels.get(t, t)} | {n} | {med:.3f} | {mn:.3f} | {cpu:.2f} | {mib / med:.0f} | {rmed} | {rmin} |")
PY
