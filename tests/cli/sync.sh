#!/usr/bin/env bash
# shoal sync through the CLI: init prints the two keys in order, join from a file and from
# standard input, a mistyped key refused (exit 1, the checksum message), another folder's
# DIR refused, status --json and scan never print a key, key files are 0600.
# Usage: sync.sh SHOAL
. "$(dirname "$0")/checks.sh"
set -u
shoal=$(readlink -f "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

mkdir a
printf 'hello' >a/one.txt
mkdir a/sub && head -c 300000 /dev/urandom >a/sub/two.bin
"$shoal" sync init a >init.out 2>init.err
rc=$?
lines=$(grep -c '' init.out)
l1=$(sed -n 1p init.out)
l2=$(sed -n 2p init.out)
if [ $rc -eq 0 ] && [ "$lines" -eq 2 ] && [[ "$l1" =~ ^read-write\ key:\ W[A-Z2-7]{58}$ ]] &&
  [[ "$l2" =~ ^read-only\ key:\ R[A-Z2-7]{58}$ ]]; then
  ok "init prints the read-write key then the read-only key"
else
  bad "init: exit $rc, output: $(cat init.out) $(cat init.err)"
fi
rw=${l1#read-write key: }
ro=${l2#read-only key: }

for f in a/.shoal/folder.key a/.shoal/device.key; do
  if [ "$(stat -c %a "$f")" = 600 ]; then ok "$f is 0600"; else bad "$f mode $(stat -c %a "$f")"; fi
done

# init on a folder that already is one: refused.
"$shoal" sync init a >/dev/null 2>err
rc=$?
[ $rc -eq 1 ] && grep -q 'already a shoal sync folder' err && ok "init twice refused" || bad "init twice: exit $rc $(cat err)"

# join from a file (read-write) and from standard input (read-only).
printf '%s\n' "$rw" >rw.key
"$shoal" sync join b --key-file rw.key >join.out 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$("$shoal" sync keys b)" = "$(cat init.out)" ] && ok "join --key-file (read-write)" ||
  bad "join --key-file: exit $rc $(cat join.out)"
printf '%s\n' "$ro" | "$shoal" sync join c - >join.out 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$("$shoal" sync keys c)" = "read-only key: $ro" ] && ok "join - (read-only, standard input)" ||
  bad "join -: exit $rc $(cat join.out)"
# Lower case, grouped with dashes: still the key.
loose=$(printf '%s' "$ro" | tr 'A-Z' 'a-z' | sed 's/...../&-/g')
"$shoal" sync join c2 "$loose" >/dev/null 2>&1 && [ "$("$shoal" sync keys c2)" = "read-only key: $ro" ] &&
  ok "join with a lower-case, dashed key" || bad "join with a loose key"

# A mistyped key: exit 1 and the checksum message; no folder made.
c5=${ro:5:1}
if [ "$c5" = A ]; then sub=B; else sub=A; fi
typo="${ro:0:5}${sub}${ro:6}"
"$shoal" sync join d "$typo" >out 2>err
rc=$?
if [ $rc -eq 1 ] && [ ! -s out ] && grep -qx 'shoal: error: checksum does not match: is the key mistyped?' err &&
  [ ! -e d/.shoal ]; then
  ok "mistyped key refused"
else
  bad "mistyped key: exit $rc, stderr $(cat err), d: $(ls -A d 2>&1)"
fi
"$shoal" sync join d "hello world" >/dev/null 2>err
rc=$?
[ $rc -eq 1 ] && grep -q 'not a shoal sync key' err && ok "not a key refused" || bad "not a key: exit $rc $(cat err)"
printf '%s\n' "$typo" >typo.key
"$shoal" sync join d --key-file typo.key >/dev/null 2>err
[ $? -eq 1 ] && grep -q 'checksum does not match' err && ok "mistyped key file refused" || bad "mistyped key file"

# Usage errors: exit 2.
"$shoal" sync join d >/dev/null 2>&1
[ $? -eq 2 ] && ok "join without a key: exit 2" || bad "join without a key"
"$shoal" sync join d "$ro" --key-file rw.key >/dev/null 2>&1
[ $? -eq 2 ] && ok "join with two keys: exit 2" || bad "join with two keys"
"$shoal" sync >/dev/null 2>&1
[ $? -eq 2 ] && ok "sync without a subcommand: exit 2" || bad "sync without a subcommand"

# A DIR joined to another folder refuses a second one.
"$shoal" sync init other >other.out 2>/dev/null
other_rw=$(sed -n 's/^read-write key: //p' other.out)
"$shoal" sync join a "$other_rw" >/dev/null 2>err
rc=$?
[ $rc -eq 1 ] && grep -q 'already joined to another folder' err && ok "another folder's key refused" ||
  bad "another folder: exit $rc $(cat err)"

# status and scan never show a key.
"$shoal" sync status a --json >status.json 2>&1
rc=$?
if [ $rc -eq 0 ] && python3 -c 'import json,sys; d=json.load(open("status.json")); sys.exit(0 if d["files"]==2 and d["key_type"]=="read-write" and len(d["share_id"])==64 else 1)' &&
  ! grep -q -e "${rw:1}" -e "${ro:1}" status.json; then
  ok "status --json: totals, no key"
else
  bad "status --json: exit $rc $(cat status.json)"
fi
"$shoal" sync status a >status.txt 2>&1
! grep -q -e "${rw:1}" -e "${ro:1}" status.txt && ok "status: no key" || bad "status shows a key"

printf 'more' >>a/one.txt
touch -d '+2 seconds' a/one.txt
rm a/sub/two.bin
printf 'new' >a/three.txt
"$shoal" sync scan a --json >scan.json 2>&1
rc=$?
if [ $rc -eq 0 ] && python3 -c 'import json,sys; d=json.load(open("scan.json")); sys.exit(0 if (d["added"],d["changed"],d["deleted"])==(1,1,1) else 1)' &&
  ! grep -q -e "${rw:1}" -e "${ro:1}" scan.json; then
  ok "scan --json: added 1, changed 1, deleted 1"
else
  bad "scan --json: exit $rc $(cat scan.json)"
fi
"$shoal" sync scan a >scan.txt 2>&1 && grep -q '^added 0, changed 0, deleted 0' scan.txt && ok "scan again: nothing" ||
  bad "scan again: $(cat scan.txt)"
mkdir a/moved
mv a/one.txt a/moved/one.txt
"$shoal" sync scan a --json >scan.json 2>&1
python3 -c 'import json,sys; d=json.load(open("scan.json")); sys.exit(0 if (d["added"],d["deleted"],d["moved"],d["bytes_hashed"])==(2,1,1,0) else 1)' &&
  ok "scan --json after a move: moved 1, 0 bytes hashed" || bad "scan after a move: $(cat scan.json)"
"$shoal" sync status nowhere >/dev/null 2>err
[ $? -eq 1 ] && grep -q 'not a shoal sync folder' err && ok "status of a plain folder: exit 1" || bad "status nowhere"

# restore: an empty archive, a version put there by hand brought back and indexed, errors.
"$shoal" sync restore a >restore.out 2>&1
[ $? -eq 0 ] && grep -qx 'no archived versions' restore.out && ok "restore: empty archive listed" ||
  bad "restore empty: $(cat restore.out)"
mkdir -p a/.shoal/archive/sub
ver=$(date -u -d '-1 day' +%Y%m%d-%H%M%S)  # within the 30 days kept
printf 'old two' >"a/.shoal/archive/sub/two.bin~$ver"
"$shoal" sync restore a --list --json >restore.json 2>&1
python3 -c 'import json,sys; v=json.load(open("restore.json"))["versions"]; sys.exit(0 if [(x["path"],x["version"],x["bytes"]) for x in v]==[("sub/two.bin","'"$ver"'",7)] else 1)' &&
  ok "restore --list --json" || bad "restore --list --json: $(cat restore.json)"
"$shoal" sync restore a sub/two.bin >restore.out 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -qx "restored sub/two.bin (version $ver, 7 bytes)" restore.out &&
  [ "$(cat a/sub/two.bin)" = "old two" ] && [ -e "a/.shoal/archive/sub/two.bin~$ver" ]; then
  ok "restore brings a version back (and keeps it archived)"
else
  bad "restore: exit $rc $(cat restore.out)"
fi
"$shoal" sync scan a >scan.txt 2>&1 && grep -q '^added 0, changed 0, deleted 0' scan.txt &&
  ok "a restored file is indexed at once" || bad "restore then scan: $(cat scan.txt)"
"$shoal" sync restore a sub/two.bin --version 20000101-000000 >/dev/null 2>err
[ $? -eq 1 ] && grep -q 'no version 20000101-000000 of sub/two.bin' err && ok "restore: unknown version, exit 1" ||
  bad "restore unknown version: $(cat err)"
"$shoal" sync restore a ../x >/dev/null 2>err
[ $? -eq 1 ] && ok "restore: a path outside the folder, exit 1" || bad "restore ../x: $(cat err)"
"$shoal" sync restore a --version "$ver" >/dev/null 2>&1
[ $? -eq 2 ] && ok "restore --version without PATH: exit 2" || bad "restore --version without PATH"
printf 'archive_days = soon\n' >a/.shoal/config
"$shoal" sync scan a >/dev/null 2>err
[ $? -eq 0 ] && grep -q 'archive_days: expected a whole number' err && ok "a bad archive setting is reported" ||
  bad "bad setting: $(cat err)"
rm a/.shoal/config

# init's QR code: none when standard output is not a terminal (two lines, as above); the
# read-only key's on a terminal; the read-write key's with --qr.
"$shoal" sync init qr1 --qr >qr.out 2>/dev/null
[ "$(sed -n 3p qr.out)" = "read-write key as a QR code:" ] && [ "$(grep -c '█' qr.out)" -ge 15 ] &&
  ok "init --qr prints the read-write key's QR code" || bad "init --qr: $(head -3 qr.out)"
if command -v script >/dev/null 2>&1; then
  script -qec "'$shoal' sync init qr2" /dev/null >qr.tty 2>&1
  grep -q 'read-only key as a QR code:' qr.tty && ! grep -q 'read-write key as a QR code' qr.tty &&
    ok "init on a terminal prints the read-only key's QR code" || bad "init on a terminal: $(head -4 qr.tty)"
fi

finish
