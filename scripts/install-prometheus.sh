#!/usr/bin/env bash
# Installs `prometheus` and `promtool`, which the metrics tests use (a real Prometheus server scraping real dtask
# processes; the alert rules checked and unit-tested with promtool).
#
# 1. Binaries already extracted into .tools/bin are used.
# 2. Else the machine's Debian release's `prometheus` package is downloaded and extracted by scripts/install-deb.sh
#    (apt against a private sources list, state and cache; the system's apt setup is not touched).
#
# Prints `prometheus --version`'s first line. Exits non-zero with a message when neither works.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"

fail() {
  echo "install-prometheus: $*" >&2
  echo "install-prometheus: install Prometheus 2.x (prometheus and promtool) into $tools/bin, then run this again." >&2
  exit 1
}

if [[ ! -x "$tools/bin/prometheus" || ! -x "$tools/bin/promtool" ]]; then
  echo "install-prometheus: fetching the Debian prometheus package" >&2
  tree="$(bash "$root/scripts/install-deb.sh" prometheus)" || fail "the prometheus package could not be fetched."
  for tool in prometheus promtool; do
    [[ -x "$tree/usr/bin/$tool" ]] || fail "the prometheus package holds no $tool binary."
  done
  mkdir -p "$tools/bin"
  install -m 0755 "$tree/usr/bin/prometheus" "$tools/bin/prometheus"
  install -m 0755 "$tree/usr/bin/promtool" "$tools/bin/promtool"
fi

version="$("$tools/bin/prometheus" --version 2>&1)"
printf '%s\n' "${version%%$'\n'*}"
