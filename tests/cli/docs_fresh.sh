#!/usr/bin/env bash
# docs/CLI.md is what the parser's definitions say today: regenerate it and compare.
# Usage: docs_fresh.sh SHOAL SOURCE_DIR
set -u
shoal=$(readlink -f "$1")
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$shoal" gen-docs --markdown "$tmp/CLI.md" || exit 1
if diff -u "$src/docs/CLI.md" "$tmp/CLI.md"; then
  echo "PASS: docs/CLI.md is up to date"
else
  echo "FAIL: docs/CLI.md is stale: run build/shoal gen-docs --markdown docs/CLI.md"
  exit 1
fi
# It covers every subcommand the parser knows, and a flag with its default.
for sub in create info download seed dht tracker scrape publish sync daemon stream; do
  grep -q "^## \`shoal $sub\`" "$src/docs/CLI.md" || {
    echo "FAIL: docs/CLI.md lacks shoal $sub"
    exit 1
  }
done
grep -qE '^\| `--max-peers` \| UINT in \[1 - 100000\] \| `80` \|' "$src/docs/CLI.md" || {
  echo "FAIL: docs/CLI.md lacks download's --max-peers with its default"
  exit 1
}
echo "PASS: every subcommand listed"
