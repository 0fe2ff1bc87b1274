#!/usr/bin/env bash
# Downloads Debian packages with apt against a private sources list, state and cache (the system's apt setup is not
# touched) and extracts them into .tools/root/ with dpkg-deb -x (no maintainer scripts run, nothing is installed
# system-wide). Prints the path of each extracted package's tree.
#
#   scripts/install-deb.sh [--suite SUITE] PACKAGE...
#
# SUITE is the Debian release to take the packages from (default: the machine's own, e.g. bookworm). A package whose
# .deb was already extracted is not downloaded again. Exits non-zero with a message when apt cannot fetch a package.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"

fail() {
  echo "install-deb: $*" >&2
  exit 1
}

suite=""
if [[ "${1:-}" == "--suite" ]]; then
  [[ $# -ge 2 ]] || fail "--suite needs a value"
  suite="$2"
  shift 2
fi
[[ $# -gt 0 ]] || fail "usage: install-deb.sh [--suite SUITE] PACKAGE..."

command -v apt-get >/dev/null 2>&1 || fail "this machine has no apt-get (not Debian-based)."
command -v dpkg-deb >/dev/null 2>&1 || fail "this machine has no dpkg-deb."

if [[ -z "$suite" ]]; then
  suite="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  [[ -n "$suite" ]] || fail "cannot tell this machine's Debian release (VERSION_CODENAME in /etc/os-release); pass --suite."
fi

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

work="$tools/apt/$suite"
tree="$tools/root"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/deb" "$tree"
cat > "$work/sources.list" <<SRC
deb [signed-by=$keyring] $mirror $suite main
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

updated=false
for package in "$@"; do
  marker="$work/deb/$package.extracted"
  if [[ ! -f "$marker" ]]; then
    if [[ "$updated" == false ]]; then
      echo "install-deb: fetching $suite's package lists from $mirror" >&2
      apt-get "${apt_opts[@]}" -qq update >&2 || fail "apt-get update against $mirror ($suite) failed."
      updated=true
    fi
    rm -f "$work/deb/${package}"_*.deb
    (cd "$work/deb" && apt-get "${apt_opts[@]}" -qq download "$package" >&2) || fail "apt-get download $package ($suite) failed."
    deb="$(ls -t "$work/deb/${package}"_*.deb 2>/dev/null | head -n 1)"
    [[ -n "$deb" ]] || fail "no $package .deb was downloaded."
    dpkg-deb -x "$deb" "$tree"
    basename "$deb" > "$marker"
  fi
  echo "install-deb: $package ($(cat "$marker")) in $tree" >&2
done
echo "$tree"
