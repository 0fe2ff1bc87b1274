#!/usr/bin/env bash
# Runs every test project against a real Consul agent (installed by scripts/install-consul.sh and started by
# the test fixtures themselves), with libfaketime installed by scripts/install-deb.sh, and prints one summary line: "N passed, N failed, N skipped".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-consul.sh
# Prometheus and promtool (metrics and alert-rule tests), helm (chart tests); all under .tools/bin.
bash scripts/install-prometheus.sh
bash scripts/install-helm.sh
# libfaketime, for the executor tests that run a node on a wrong clock (they find it under .tools/root).
bash scripts/install-deb.sh faketime libfaketime >/dev/null
# ip netns, nft and libfaketime, for the short chaos run (tests/Scheduler.Chaos.Tests); fails with the reason when it cannot.
bash scripts/install-chaos-tools.sh
# Headless Chromium and chromedriver from Debian (into .tools/root when absent), for the browser tests of `dtask ui`.
bash scripts/install-chromium.sh
export PATH="$root/.tools/bin:$PATH"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

dotnet build Scheduler.sln -c Release -nologo -v quiet -clp:ErrorsOnly
# One test assembly at a time: several of them start real multi-process fleets (Consul servers, executors), and on a
# two-core machine two such fleets side by side would measure the machine's contention rather than dtask.
status=0
mapfile -t projects < <(find tests -name '*.Tests.csproj' | sort)
for project in "${projects[@]}"; do
  dotnet test "$project" -c Release --no-build -nologo ${TEST_FILTER:+--filter "$TEST_FILTER"} 2>&1 | tee -a "$log" || status=$?
done

# One line per test assembly: "Passed!  - Failed: 0, Passed: 12, Skipped: 0, Total: 12, ..."
read -r passed failed skipped < <(awk '
  /(Passed|Failed)! +- Failed: / {
    for (i = 1; i <= NF; i++) {
      if ($i == "Failed:")  { f += $(i+1) + 0 }
      if ($i == "Passed:")  { p += $(i+1) + 0 }
      if ($i == "Skipped:") { s += $(i+1) + 0 }
    }
  }
  END { printf "%d %d %d\n", p, f, s }' "$log")

assemblies="$(grep -cE '(Passed|Failed)! +- Failed: ' "$log" || true)"
if grep -qE '^ +Failed [A-Za-z]' "$log"; then
  # The failed tests again, each with its message, so that the end of the output names them.
  echo
  echo "failed tests:"
  awk '/^ +Failed [A-Za-z]/ { n = 14 } n > 0 { print; n-- }' "$log"
fi
echo
echo "test assemblies: $assemblies"
echo "$passed passed, $failed failed, $skipped skipped"
if [[ "$status" -ne 0 || "$failed" -ne 0 || "$passed" -eq 0 ]]; then
  exit 1
fi
