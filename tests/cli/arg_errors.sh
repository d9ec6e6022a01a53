#!/usr/bin/env bash
# Argument errors (issue 15, point 8): every one exits 2 with one line on stderr that points
# at the subcommand's --help; unknown flags suggest the nearest one; meaningless values are
# refused; --help shows defaults and every accepted value; `info` reads http(s):// URLs,
# numbers files as --select-file takes them and says when a file is not a torrent at all;
# failed writes name the errno text.
# Usage: arg_errors.sh SHOAL
. "$(dirname "$0")/checks.sh"
set -u
shoal=$(readlink -f "$1")
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
export SHOAL_LOCAL=1
mkdir -p data/sub sandbox
head -c 50000 /dev/urandom >data/a.bin
head -c 30000 /dev/urandom >data/sub/b.bin
printf 'hello' >data/c.txt
"$shoal" create --v1 --no-date --piece-size 16KiB -o good.torrent data >/dev/null 2>&1 || {
  echo "setup failed"
  exit 1
}

# expect CODE PATTERN NAME -- ARGS...: exit code, exactly one stderr line matching, no stdout.
expect() {
  local code=$1 pattern=$2 name=$3
  shift 4
  local out err rc lines
  out=$(cd sandbox && timeout 20 "$shoal" "$@" 2>../stderr)
  rc=$?
  err=$(cat stderr)
  lines=$(printf '%s' "$err" | grep -c '' || true)
  if [ "$rc" -eq "$code" ] && [ -z "$out" ] && [ "$lines" -eq 1 ] && printf '%s' "$err" | grep -qE -e "$pattern"; then
    ok "$name: $err"
  else
    bad "$name: exit $rc (want $code), stderr lines $lines (want 1)"
    echo "  stdout: ${out:0:200}"
    echo "  stderr: ${err:0:400}"
    echo "  want stderr matching: $pattern"
  fi
}

# Exit 2 and a pointer to the right help, for errors CLI11 finds and for those the commands find.
expect 2 "unknown flag --max-peer; did you mean --max-peers\? \(see shoal download --help\)$" "typo of a flag" -- download --max-peer 5 ../good.torrent
expect 2 "unknown flag --seed-ration; did you mean --seed-ratio\? \(see shoal download --help\)$" "typo with =value" -- download --seed-ration=2 ../good.torrent
expect 2 "unknown flag --wat; did you mean --wait\? \(see shoal dht get --help\)$" "typo in a nested subcommand" -- dht get --wat 3 abc
expect 2 "unknown flag --zzzzzzzzzz \(see shoal info --help\)$" "no near flag: no suggestion" -- info --zzzzzzzzzz x
expect 2 "unknown command 'downlod'; did you mean download\? \(see shoal --help\)$" "typo of a subcommand" -- downlod x
expect 2 "TORRENT is required \(see shoal info --help\)$" "missing positional" -- info
expect 2 "A subcommand is required.*\(see shoal dht --help\)$" "dht without a subcommand" -- dht
expect 2 "--max-peers: .*\(see shoal download --help\)$" "--max-peers 0" -- download --max-peers 0 ../good.torrent
expect 2 "--seed-ratio: must be 0 or more, not -1 \(see shoal download --help\)$" "negative ratio" -- download --seed-ratio -1 ../good.torrent
expect 2 "--seed-time: must be 0 or more, not -5 \(see shoal download --help\)$" "negative seed time" -- download --seed-time -5 ../good.torrent
expect 2 "--stop-timeout: must be 0 or more.*\(see shoal download --help\)$" "negative stop timeout" -- download --stop-timeout -1 ../good.torrent
expect 2 "--max-download-rate '0' is not a rate above zero.*\(see shoal download --help\)$" "zero rate" -- download --max-download-rate 0 ../good.torrent
expect 2 "--max-upload-rate 'fast' is not a rate.*\(see shoal seed --help\)$" "bad rate on seed" -- seed --max-upload-rate fast ../good.torrent
expect 2 "--bind 'nowhere' is not an IP address \(see shoal download --help\)$" "bad --bind" -- download --bind nowhere ../good.torrent
expect 2 "--peer 'nocolon': expected HOST:PORT \(see shoal download --help\)$" "bad --peer" -- download --peer nocolon ../good.torrent
expect 2 "--select-file '9': file indices run from 1 to 3 \(see shoal download --help\)$" "--select-file out of range" -- download --select-file 9 ../good.torrent
expect 2 "--encryption: .*tolerated.*\(see shoal download --help\)$" "bad --encryption" -- download --encryption sometimes ../good.torrent
expect 2 "--piece-size: piece size 20000 must be a power of two from 16 KiB to 1 GiB \(see shoal create --help\)$" "piece size not a power of two" -- create ../data --piece-size 20000
expect 2 "choose one of --v1, --v2, --hybrid \(see shoal create --help\)$" "two versions" -- create ../data --v1 --v2
expect 2 "--threads.*-1 \(see shoal create --help\)$" "negative thread count" -- create ../data --threads -1
expect 2 "is not a 40-digit hex info-hash \(see shoal dht get-peers --help\)$" "dht get-peers bad hash" -- dht get-peers zz
expect 2 "--key-seed must be 64 hex digits.*\(see shoal dht put --help\)$" "dht put bad key" -- dht put v --key-seed 12
expect 2 "--wait: must be 0 or more.*\(see shoal dht get --help\)$" "dht negative wait" -- dht get --wait -1 abc
expect 2 "--max-torrents: must be more than 0, not 0 \(see shoal tracker --help\)$" "tracker zero max" -- tracker --max-torrents 0
expect 2 "--rpc-bind 'x' is not an IP address \(see shoal daemon --help\)$" "daemon bad rpc-bind" -- daemon --state-dir ../st --rpc-bind x
expect 2 "--base-url 'ftp://x' must be an http.*\(see shoal publish --help\)$" "publish bad base url" -- publish ../data --base-url ftp://x
expect 2 "--file 7: the torrent has 3 files .*\(see shoal stream --help\)$" "stream --file past the last" -- stream ../good.torrent --file 7 -d ../sandbox/stream
expect 2 "--http-port: .*\(see shoal stream --help\)$" "stream bad http port" -- stream ../good.torrent --http-port 70000

# --help: defaults and every accepted value.
help=$("$shoal" download --help)
for want in 'tolerated' '--max-peers UINT:UINT in \[1 - 100000\]=80' '--encryption TEXT:\{allowed,preferred,required,tolerated\}=preferred' \
  '--port INT:INT in \[0 - 65535\]=6881' '--seed-ratio FLOAT:NONNEGATIVE=1' '--transport TEXT:\{tcp,utp,both\}=both'; do
  if printf '%s' "$help" | grep -qE -e "$want"; then ok "download --help shows $want"; else bad "download --help lacks $want"; fi
done
if printf '%s' "$help" | grep -q '=\[\]'; then bad "download --help shows an empty list as a default"; else ok "no =[] defaults"; fi
if "$shoal" tracker --help | grep -qE -e '--interval UINT:UINT in \[1 - 10800\]=1800'; then ok "tracker --help default"; else bad "tracker --help default"; fi

# Not a torrent at all: say what it is.
printf '<!DOCTYPE html>\n<html><body>Moved</body></html>\n' >page.torrent
expect 1 "page.torrent: not a .torrent file: it looks like HTML" "HTML file" -- info ../page.torrent
: >empty.torrent
expect 1 "empty.torrent: not a .torrent file: it is empty" "empty file" -- info ../empty.torrent
printf '{"name": "x"}' >json.torrent
expect 1 "json.torrent: not a .torrent file: it looks like JSON" "JSON file" -- info ../json.torrent
printf '\x1f\x8b\x08\x00rest' >gz.torrent
expect 1 "gz.torrent: not a .torrent file: it looks like gzip" "gzip file" -- info ../gz.torrent
expect 1 "page.torrent: not a .torrent file: it looks like HTML" "download of an HTML file" -- download --no-dht --no-lsd ../page.torrent
# A torrent cut short is still reported by the parser, not guessed at.
head -c 100 good.torrent >cut.torrent
expect 1 "cut.torrent: bencode: " "truncated torrent keeps the parser's message" -- info ../cut.torrent

# Write and read failures name the cause.
expect 1 "nodir/x.torrent: cannot write the torrent file: No such file or directory" "write into a missing folder" -- create ../data -o ../nodir/x.torrent
expect 1 "missing.torrent: No such file or directory" "read a missing file" -- info ../missing.torrent

# info numbers the files as --select-file takes them; --json gives each file's index.
text=$("$shoal" info good.torrent)
json=$("$shoal" info --json good.torrent)
if printf '%s\n' "$text" | grep -qE '^  1  data/a\.bin ' && printf '%s\n' "$text" | grep -qE '^  2  data/c\.txt ' &&
  printf '%s\n' "$text" | grep -qE '^  3  data/sub/b\.bin '; then
  ok "info numbers the files 1..3"
else
  bad "info file numbers: $text"
fi
if printf '%s' "$json" | /usr/bin/python3 -c '
import json, sys
files = json.load(sys.stdin)["files"]
assert [f["index"] for f in files] == [1, 2, 3], files
assert files[1]["path"] == "data/c.txt", files'; then
  ok "info --json has each file's index"
else
  bad "info --json index"
fi
# info takes an http(s):// URL, as download does.
mkdir www
cp good.torrent page.torrent www/
/usr/bin/python3 -c '
import http.server, socketserver, sys, os
os.chdir(sys.argv[1])
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
s = socketserver.TCPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()' www >port.txt &
server_pid=$!
for _ in $(seq 50); do [ -s port.txt ] && break; sleep 0.1; done
port=$(cat port.txt)
url="http://127.0.0.1:$port/good.torrent"
if [ "$("$shoal" info --json "$url" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["info_hash_v1"])')" = \
  "$("$shoal" info --json good.torrent | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["info_hash_v1"])')" ]; then
  ok "info of a URL gives the same torrent"
else
  bad "info of a URL"
fi
expect 1 "page.torrent: not a .torrent file: it looks like HTML" "info of a URL serving HTML" -- info "http://127.0.0.1:$port/page.torrent"
expect 1 "nothing.torrent: .*404" "info of a URL that is not there" -- info "http://127.0.0.1:$port/nothing.torrent"

finish
