#!/usr/bin/env bash
# Installs the Consul binary the tests and the demo use.
#
# 1. `consul` on PATH wins.
# 2. Else a binary already extracted into .tools/bin is used.
# 3. Else, on Debian, Debian 11's `consul` package (1.8.x) is downloaded and extracted by scripts/install-deb.sh
#    (apt against a private sources list, state and cache; the system's apt setup is not touched).
#
# Prints `consul version`. Exits non-zero with a message saying what to install when none of this works.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
bin="$tools/bin/consul"
required="Consul 1.8 or newer"

# Prints the first line of its argument (no pipe into head: under pipefail a writer cut off early fails the script).
first_line() {
  printf '%s\n' "${1%%$'\n'*}"
}

fail() {
  echo "install-consul: $*" >&2
  echo "install-consul: install $required and put \`consul\` on PATH, then run this again." >&2
  exit 1
}

if command -v consul >/dev/null 2>&1; then
  first_line "$(consul version)"
  exit 0
fi

if [[ -x "$bin" ]]; then
  first_line "$("$bin" version)"
  exit 0
fi

echo "install-consul: fetching Debian 11's consul package" >&2
tree="$(bash "$root/scripts/install-deb.sh" --suite bullseye consul)" || fail "the consul package could not be fetched."
found="$tree/usr/bin/consul"
[[ -x "$found" ]] || fail "the consul package holds no consul binary."
mkdir -p "$tools/bin"
install -m 0755 "$found" "$bin"
first_line "$("$bin" version)"
