# Sourced by the CLI tests: ok and bad count and print a check ("PASS: ..." or "FAIL: ...");
# finish prints the tally and fails if any check did.
pass=0
fail=0
ok() {
  pass=$((pass + 1))
  echo "PASS: $1"
}
bad() {
  fail=$((fail + 1))
  echo "FAIL: $1"
}
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
