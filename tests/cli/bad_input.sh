#!/usr/bin/env bash
# Bad input through the CLI: each case must exit with the documented code, print exactly
# one line on stderr that names the problem, print nothing on stdout, and write no file.
# Usage: bad_input.sh SHOAL
set -u
shoal=$(readlink -f "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
mkdir data sandbox
head -c 100000 /dev/urandom >data/file.bin
"$shoal" create --v1 --no-date --piece-size 16KiB -o good.torrent data/file.bin >/dev/null 2>&1 || {
  echo "setup failed"
  exit 1
}
pass=0
fail=0

# expect CODE PATTERN NAME -- ARGS... : run shoal in an empty folder and check the outcome.
expect() {
  local code=$1 pattern=$2 name=$3
  shift 4
  local out err rc before after
  before=$(ls -A sandbox)
  out=$(cd sandbox && timeout 20 "$shoal" "$@" 2>../stderr)
  rc=$?
  err=$(cat stderr)
  after=$(ls -A sandbox)
  local lines
  lines=$(printf '%s' "$err" | grep -c '' || true)
  if [ "$rc" -eq "$code" ] && [ -z "$out" ] && [ "$lines" -eq 1 ] && printf "%s" "$err" | grep -qE -e "$pattern" &&
    [ "$before" = "$after" ]; then
    pass=$((pass + 1))
    echo "PASS: $name: $err"
  else
    fail=$((fail + 1))
    echo "FAIL: $name: exit $rc (want $code), stderr lines $lines (want 1), files: '$after'"
    echo "  stdout: ${out:0:200}"
    echo "  stderr: ${err:0:400}"
    echo "  want stderr matching: $pattern"
  fi
}

size=$(stat -c %s good.torrent)
head -c $((size / 2)) good.torrent >truncated.torrent
expect 1 "truncated.torrent: bencode: .*end of input.*at byte" "truncated torrent" -- info ../truncated.torrent

truncate -s $((64 * 1024 * 1024 + 1)) oversized.torrent
expect 1 "oversized.torrent: .*over the \.torrent limit" "oversized torrent" -- info ../oversized.torrent

{ printf 'd4:info'; head -c 200000 /dev/zero | tr '\0' 'l'; } >deep.torrent
expect 1 "deep.torrent: bencode: nesting deeper than 100 \(at byte 106\)" "deeply nested torrent" -- info ../deep.torrent

# Lying structure: the piece count does not match the length.
sed 's/6:lengthi100000e/6:lengthi900000e/' good.torrent >lying.torrent
expect 1 "lying.torrent: info.pieces: 7 piece hashes for 900000 bytes.*expected 55.*at byte" "piece count lies" -- info ../lying.torrent

printf 'd4:infod4:name1:x12:piece lengthi-5e6:lengthi1e6:pieces0:ee' >negative.torrent
expect 1 "info.piece length: must be positive, is -5" "negative piece length" -- info ../negative.torrent

printf 'd4:infoi1ee' >notdict.torrent
expect 1 "info: expected a dictionary \(at byte 7\)" "info not a dictionary" -- info ../notdict.torrent

: >empty.torrent
expect 1 "empty.torrent: not a .torrent file: it is empty" "empty file" -- info ../empty.torrent

head -c 4096 /dev/urandom | tr -d 'dli0-9' >garbage.torrent
expect 1 "garbage.torrent: not a .torrent file: it is binary data" "random bytes" -- info ../garbage.torrent

expect 1 "missing.torrent: No such file or directory" "missing file" -- info ../missing.torrent
expect 1 "data: .*" "a folder" -- info ../data

expect 1 "magnet link: urn:btih needs 40 hex or 32 base32 digits" "short btih" -- info "magnet:?xt=urn:btih:abcdef"
expect 1 "magnet link: no info-hash" "magnet without xt" -- info "magnet:?dn=x"
expect 1 "magnet link: .*over the limit of 65536" "oversized magnet" -- info "magnet:?xt=urn:btih:$(printf 'a%.0s' $(seq 40))&dn=$(head -c 70000 /dev/zero | tr '\0' a)"
expect 1 "magnet link: not a valid URI" "bad percent escape" -- info "magnet:?xt=urn:btih:$(printf 'a%.0s' $(seq 40))&dn=%zz"

expect 1 "nothing-here: no such file or folder" "create from a missing path" -- create nothing-here
expect 2 "--piece-size 'lots' is not a size" "create with a bad piece size" -- create ../data --piece-size lots
expect 2 "piece size 20000 must be a power of two.*see shoal create --help" "create with a piece size that is not a power of two" -- create ../data --piece-size 20000
expect 2 "choose one of --v1, --v2, --hybrid" "create with two versions" -- create ../data --v1 --v2
expect 2 "unknown flag --frobnicate \(see shoal info --help\)" "unknown flag" -- info --frobnicate x
# seed never downloads: the data must be where -d says (no folder made, nothing written).
expect 1 "no data for file.bin in \.\./nowhere: is -d right\?" "seed without the data" -- seed ../good.torrent -d ../nowhere --local --port 0
mkdir -p short && head -c 5000 data/file.bin >short/file.bin
expect 1 "--skip-check trusts the data, but file.bin has 5000 bytes, the torrent says 100000" "seed --skip-check with a short file" -- seed ../good.torrent -d ../short --skip-check --local --port 0

# Refuses to overwrite without --force (and says how).
cp good.torrent sandbox/file.bin.torrent
expect 1 "already exists \(use --force" "create over an existing torrent" -- create ../data/file.bin
rm sandbox/file.bin.torrent

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
