#!/usr/bin/env bash
# The tools the chaos run (make chaos, and its short run in make test) needs beside Consul: `ip` (iproute2) for the
# executors' network namespaces and veth pairs, `nft` (nftables) for partitions by drop rule, and libfaketime for the
# executors on a wrong clock. nftables and libfaketime are extracted into .tools/root by scripts/install-deb.sh (nothing
# installed system-wide); iproute2, when the machine has no `ip`, is installed with apt-get. Exits non-zero with the
# reason when a tool cannot be had.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v ip >/dev/null 2>&1; then
  echo "install-chaos-tools: no \`ip\` on this machine; installing iproute2 with apt-get" >&2
  apt-get -qq update >&2 && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends iproute2 >&2 \
    || { echo "install-chaos-tools: could not install iproute2 (ip netns)" >&2; exit 1; }
fi

bash "$root/scripts/install-deb.sh" faketime libfaketime nftables libnftables1 libnftnl11 libjansson4 libmnl0 libxtables12 libedit2 >/dev/null

lib="$root/.tools/root/usr/lib/x86_64-linux-gnu"
if ! LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$root/.tools/root/usr/sbin/nft" --version >/dev/null; then
  echo "install-chaos-tools: $root/.tools/root/usr/sbin/nft does not run" >&2
  exit 1
fi
if ! ip netns list >/dev/null 2>&1; then
  echo "install-chaos-tools: \`ip netns\` does not work here (the chaos run needs root and network namespaces)" >&2
  exit 1
fi
