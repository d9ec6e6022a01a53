#!/usr/bin/env bash
# `make run` installs only what building and running need, `make test` also the test tools:
# scripts/install-deps' run set names no test package and its --test set names them; a build
# configured where GoogleTest cannot be found (as after `make run` alone) configures without
# the tests instead of failing, and the Makefile's test target installs the --test set and
# configures again.
# Usage: deps_split.sh SOURCE_DIR
. "$(dirname "$0")/checks.sh"
set -u
src=$(readlink -f "$1")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run_set=$("$src/scripts/install-deps" --print)
test_set=$("$src/scripts/install-deps" --test --print)
bench_set=$("$src/scripts/install-deps" --bench --print)
for p in g++ cmake ninja-build libboost1.81-dev libssl-dev libsodium-dev libsqlite3-dev; do
  printf '%s\n' "$run_set" | grep -qx -- "$p" && ok "run set has $p" || bad "run set lacks $p"
done
for p in libgtest-dev python3-libtorrent transmission-daemon qbittorrent-nox opentracker chromium ffmpeg clang nodejs syncthing; do
  printf '%s\n' "$run_set" | grep -qx -- "$p" && bad "run set has the test or bench package $p" || ok "run set leaves out $p"
done
for p in libgtest-dev python3-libtorrent transmission-daemon opentracker chromium ffmpeg clang nodejs npm; do
  printf '%s\n' "$test_set" | grep -qx -- "$p" && ok "test set has $p" || bad "test set lacks $p"
done
printf '%s\n' "$test_set" | grep -qx g++ && ok "test set includes the run set" || bad "test set lacks g++"
printf '%s\n' "$bench_set" | grep -qx syncthing && printf '%s\n' "$bench_set" | grep -qx python3-libtorrent &&
  ok "bench set: syncthing and the test peers" || bad "bench set: $bench_set"
"$src/scripts/install-deps" --bogus >/dev/null 2>&1
[ $? -eq 2 ] && ok "an unknown flag: exit 2" || bad "an unknown flag does not exit 2"

# GoogleTest hidden: configuring succeeds, says the tests are left out, and builds no test.
if cmake -S "$src" -B "$tmp/b" -G Ninja -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON >"$tmp/cfg.log" 2>&1; then
  ok "configures without GoogleTest"
  grep -q "the tests are not built" "$tmp/cfg.log" && ok "... and says the tests are left out" ||
    bad "no warning: $(tail -5 "$tmp/cfg.log")"
  if grep -q "unit_tests" "$tmp/b/build.ninja"; then bad "build.ninja still has unit_tests"; else ok "... and has no unit_tests target"; fi
  grep -q "build shoal:" "$tmp/b/build.ninja" && ok "... but builds shoal" || bad "no shoal target"
else
  bad "configure without GoogleTest failed: $(tail -5 "$tmp/cfg.log")"
fi

# The Makefile: run and build install the run set; test the --test set, then configures again.
plan=$(make -n -C "$src" test BUILD="$tmp/b" 2>/dev/null)
printf '%s' "$plan" | grep -q "install-deps --test" && ok "make test installs the --test set" || bad "make test: $plan"
printf '%s' "$plan" | grep -q -- "-DSHOAL_TESTS=ON" && ok "make test configures again with the tests" ||
  bad "make test does not configure: $plan"
plan=$(make -n -C "$src" run BUILD="$tmp/b" 2>/dev/null)
if printf '%s' "$plan" | grep -q -- "--test\|--bench"; then bad "make run installs test tools: $plan"; else ok "make run installs only the run set"; fi

finish
