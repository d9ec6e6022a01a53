#!/usr/bin/env bash
# `make install` (cmake --install --strip with DESTDIR and a prefix, as the Makefile runs it):
# a stripped binary that prints its version and commit, a man page per subcommand that `man`
# renders without warnings, bash completions that load and complete flags and values, zsh and
# fish completions that parse, the systemd unit pointing at the prefix, and the web UI.
# Usage: install.sh BUILD_DIR
. "$(dirname "$0")/checks.sh"
set -u
build=$(readlink -f "$1")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! DESTDIR="$tmp" cmake --install "$build" --prefix /usr --strip >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"
  echo "FAIL: cmake --install"
  exit 1
fi
root=$tmp/usr
bin=$root/bin/shoal
[ -x "$bin" ] && ok "binary installed in PREFIX/bin" || bad "no $bin"
if readelf -S "$bin" | grep -q '\.debug_info'; then bad "installed binary keeps debug info"; else ok "installed binary is stripped"; fi
if readelf -S "$build/shoal" | grep -q '\.debug_info'; then ok "the build's binary keeps its debug info"; else bad "build binary has no debug info"; fi
version=$("$bin" --version)
if printf '%s' "$version" | grep -qE '^shoal [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{12}|unknown)\)$'; then
  ok "--version: $version"
else
  bad "--version prints '$version'"
fi
if git -C "$(dirname "$0")" rev-parse HEAD >/dev/null 2>&1 && printf '%s' "$version" | grep -q 'commit unknown'; then
  bad "--version has no commit in a git checkout"
fi

# A man page per subcommand, rendered by man itself.
for page in shoal shoal-create shoal-info shoal-download shoal-seed shoal-dht shoal-dht-get shoal-tracker \
  shoal-publish shoal-daemon shoal-stream; do
  [ -f "$root/share/man/man1/$page.1" ] || bad "no man page $page.1"
done
out=$(MANPAGER=cat MANWIDTH=100 man --warnings -l "$root/share/man/man1/shoal-download.1" 2>"$tmp/man.err")
rc=$?
flat=$(printf '%s' "$out" | tr '\n' ' ' | tr -s ' ')  # lines wrap where the terminal width says
if [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q 'SHOAL-DOWNLOAD(1)' &&
  printf '%s' "$out" | grep -qE -e '--max-peers UINT' && printf '%s' "$out" | grep -q 'Default: 80' &&
  printf '%s' "$flat" | grep -q 'One of: allowed, preferred, required, tolerated' && [ ! -s "$tmp/man.err" ]; then
  ok "man -l shoal-download.1 renders the flags, defaults and choices without warnings"
else
  bad "man shoal-download: rc $rc, stderr: $(head -c 300 "$tmp/man.err")"
  printf '%s\n' "$out" | head -30
fi
if MANPAGER=cat man -l "$root/share/man/man1/shoal.1" 2>/dev/null | grep -q 'shoal-download(1)'; then
  ok "shoal.1 points to the subcommands' pages"
else
  bad "shoal.1 lacks the subcommands"
fi

# bash: the completion loads and completes.
comp=$root/share/bash-completion/completions/shoal
reg=$(bash -c "source '$comp' && complete -p shoal" 2>&1)
if [ "$reg" = "complete -o filenames -F _shoal shoal" ]; then ok "bash completion registers: $reg"; else bad "bash: '$reg'"; fi
complete_words() {  # words... : what _shoal offers for the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _shoal; printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$@"
}
[ "$(complete_words shoal downl)" = "download" ] && ok "bash: subcommand" || bad "bash: subcommand: $(complete_words shoal downl)"
[ "$(complete_words shoal download --max-pe)" = "--max-peers" ] && ok "bash: flag" || bad "bash: flag: $(complete_words shoal download --max-pe)"
[ "$(complete_words shoal seed --encryption t)" = "tolerated" ] && ok "bash: a flag's values" || bad "bash: values: $(complete_words shoal seed --encryption t)"
[ "$(complete_words shoal dht get-peers --wa)" = "--wait" ] && ok "bash: nested subcommand's flag" || bad "bash: nested: $(complete_words shoal dht get-peers --wa)"
[ "$(complete_words shoal dht ge | sort | tr '\n' ' ')" = "get get-peers " ] && ok "bash: nested subcommands" || bad "bash: nested subs: $(complete_words shoal dht ge)"

# zsh and fish: the files parse (when the shells are here).
zc=$root/share/zsh/vendor-completions/_shoal
fc=$root/share/fish/vendor_completions.d/shoal.fish
[ -f "$zc" ] && ok "zsh completion installed" || bad "no $zc"
[ -f "$fc" ] && ok "fish completion installed" || bad "no $fc"
if command -v zsh >/dev/null; then
  zsh -n "$zc" && ok "zsh -n" || bad "zsh -n"
  # The completion function with zsh's completion builtins stubbed to print what they are given.
  zsh_complete() {  # CURRENT words...
    zsh -c 'compdef() { :; }; _describe() { print -l -- "${(@P)2}"; }; compadd() { shift; print -l -- "$@"; }
      _files() { print FILES; }; source "$1"; CURRENT=$2; shift 2; words=("$@"); _shoal' _ "$zc" "$@"
  }
  [ "$(zsh_complete 4 shoal download --encryption '' | tr '\n' ' ')" = "allowed preferred required tolerated " ] &&
    ok "zsh: a flag's values" || bad "zsh: values: $(zsh_complete 4 shoal download --encryption '')"
  zsh_complete 4 shoal dht get --wa | grep -q '^--wait:Seconds' && ok "zsh: nested subcommand's flags" || bad "zsh: nested"
  zsh_complete 2 shoal do | grep -q '^download:Download a torrent' && ok "zsh: subcommands" || bad "zsh: subcommands"
else
  bad "zsh is not installed (scripts/install-deps installs it)"
fi
if command -v fish >/dev/null; then
  fish -n "$fc" && ok "fish -n" || bad "fish -n"
  got=$(HOME=$tmp fish -c "source '$fc'; complete -C 'shoal seed --encryption '" | cut -f1 | tr '\n' ' ')
  [ "$got" = "allowed preferred required tolerated " ] && ok "fish: a flag's values" || bad "fish: values: $got"
  got=$(HOME=$tmp fish -c "source '$fc'; complete -C 'shoal dht g'" | cut -f1 | tr '\n' ' ')
  [ "$got" = "get get-peers " ] && ok "fish: nested subcommands" || bad "fish: nested: $got"
else
  bad "fish is not installed (scripts/install-deps installs it)"
fi
grep -q -- "-l 'max-peers'" "$fc" && ok "fish lists --max-peers" || bad "fish lacks --max-peers"
grep -q "compadd -- allowed preferred required tolerated" "$zc" && ok "zsh lists --encryption's values" || bad "zsh values"

# The systemd unit, pointing at the prefix; the web UI it names; the docs.
unit=$root/lib/systemd/system/shoal.service
if [ -f "$unit" ] && grep -q '^ExecStart=/usr/bin/shoal daemon' "$unit" && grep -q 'SHOAL_WEB_DIR=/usr/share/shoal-web' "$unit" &&
  ! grep -q '/usr/local' "$unit"; then
  ok "systemd unit installed with the prefix's paths"
else
  bad "systemd unit: $(grep -E 'ExecStart|WEB_DIR' "$unit" 2>&1)"
fi
[ -f "$root/share/shoal-web/index.html" ] && ok "web UI installed" || bad "no web UI"
[ -f "$root/share/doc/shoal/CLI.md" ] && ok "CLI.md installed" || bad "no CLI.md"

# `make install` runs the same command.
src=$(cd "$(dirname "$0")/../.." && pwd)
if make -s -n -C "$src" install BUILD="$build" DESTDIR="$tmp/x" PREFIX=/usr 2>/dev/null |
  grep -qF "DESTDIR=\"$tmp/x\" cmake --install $build --prefix \"/usr\" --strip"; then
  ok "make install runs cmake --install --strip with DESTDIR and PREFIX"
else
  bad "make install: $(make -s -n -C "$src" install BUILD="$build" DESTDIR="$tmp/x" PREFIX=/usr 2>&1 | tail -2)"
fi

finish
