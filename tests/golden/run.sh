#!/usr/bin/env bash
# Golden-output test for `shoal info`: each case's text and JSON output (stdout and
# stderr, plus the exit code) must match the files checked in beside it.
# Usage: run.sh SHOAL GOLDEN_DIR [--update]
set -u
shoal=$(readlink -f "$1")
dir=$2
update=${3:-}
pass=0
fail=0
check() {  # name, expected file, command...
  local name=$1 expected=$2
  shift 2
  local actual
  actual=$("$@" 2>&1; echo "exit=$?")
  if [ "$update" = "--update" ]; then
    printf '%s\n' "$actual" >"$expected"
  fi
  if [ "$actual" = "$(cat "$expected" 2>/dev/null)" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL: $name"
    diff -u "$expected" <(printf '%s\n' "$actual") | head -40
  fi
}
cd "$dir" || exit 1
for t in *.torrent; do
  check "$t text" "${t%.torrent}.txt" "$shoal" info "$t"
  check "$t json" "${t%.torrent}.json" "$shoal" info --json "$t"
done
for m in *.magnet; do
  check "$m text" "${m%.magnet}.magnet.txt" "$shoal" info "$(cat "$m")"
  check "$m json" "${m%.magnet}.magnet.json" "$shoal" info --json "$(cat "$m")"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
