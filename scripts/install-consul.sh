#!/usr/bin/env bash
# Installs the Consul binary the tests and the demo use.
#
# 1. `consul` on PATH wins.
# 2. Else a binary already extracted into .tools/bin is used.
# 3. Else, on Debian, Debian 11's `consul` package (1.8.x) is downloaded with apt against a private
#    sources list, state and cache (the system's apt setup is not touched) and extracted into .tools/.
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

command -v apt-get >/dev/null 2>&1 || fail "this machine has no apt-get (not Debian-based)."
command -v dpkg-deb >/dev/null 2>&1 || fail "this machine has no dpkg-deb."

# The mirror URI of the machine's own Debian sources (deb822 *.sources first, then sources.list).
mirror=""
shopt -s nullglob
for f in /etc/apt/sources.list.d/*.sources; do
  mirror="$(awk '
    /^[[:space:]]*$/ { uris=""; suites=""; next }
    /^URIs:/ { uris=$2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) suites=$i }
    uris != "" && suites != "" && uris !~ /security/ { print uris; exit }
  ' "$f")"
  [[ -n "$mirror" ]] && break
done
if [[ -z "$mirror" && -f /etc/apt/sources.list ]]; then
  mirror="$(awk '$1 == "deb" && $0 !~ /security/ {
      for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' /etc/apt/sources.list)"
fi
shopt -u nullglob
[[ -n "$mirror" ]] || fail "found no Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list."

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f "$keyring" ]] || fail "the Debian archive keyring ($keyring) is missing."

work="$tools/apt"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/deb" "$tools/bin"
cat > "$work/sources.list" <<SRC
deb [signed-by=$keyring] $mirror bullseye main
SRC

apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Dir::State::Status=/var/lib/dpkg/status"
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=true"
)

echo "install-consul: fetching Debian 11's consul package from $mirror" >&2
apt-get "${apt_opts[@]}" -qq update >&2 || fail "apt-get update against $mirror (bullseye) failed."
(cd "$work/deb" && apt-get "${apt_opts[@]}" -qq download consul >&2) || fail "apt-get download consul failed."

deb="$(ls -t "$work"/deb/consul_*.deb 2>/dev/null | head -n 1)"
[[ -n "$deb" ]] || fail "no consul .deb was downloaded."
extract="$work/extract"
rm -rf "$extract"
dpkg-deb -x "$deb" "$extract"
found="$extract/usr/bin/consul"
[[ -x "$found" ]] || fail "the package $deb holds no consul binary."
install -m 0755 "$found" "$bin"
rm -rf "$extract"
first_line "$("$bin" version)"
