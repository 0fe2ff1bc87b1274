# dtask — a distributed cron on Consul.
#   make test    install Consul if needed, build, run every test against a real Consul agent
#   make tools   install the test tools only: Consul (.tools/bin/consul unless consul is on PATH), prometheus, promtool, helm
#   make build   build the solution

SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help tools build test clean run

help:
	@echo "make run     the local demo: Consul, the operator on examples/ (serving dtask ui, address printed) and three executors (DURATION=60 to stop by itself)"
	@echo "make test    build and run all tests (installs Consul if needed)"
	@echo "make tools   install Consul (unless on PATH), prometheus, promtool and helm into .tools/"
	@echo "make build   build the solution"
	@echo "make publish self-contained single-file dtask binaries in artifacts/<rid>/ (with dtask.sha512)"
	@echo "make bench   benchmarks against a real Consul beside consul lock (BENCH=latency,cost to select, BENCH_QUICK=1 short)"
	@echo "make fuzz    property tests of the manifest reader and the KV value decoders at length (FUZZ_ITERATIONS=20000 cases each; failures kept in tests/fixtures/property)"
	@echo "make chaos   exactly-once under faults: 3 Consul servers, 5 executors, CHAOS_DURATION=600 s of faults (CHAOS_SEED=N replays), invariant check"
	@echo "make chaos-defect  the chaos run against an executor build with a known defect put back: passes only when the checker catches it"

tools:
	@bash scripts/install-consul.sh
	@bash scripts/install-prometheus.sh
	@bash scripts/install-helm.sh
	@bash scripts/install-deb.sh faketime libfaketime >/dev/null
	@bash scripts/install-chromium.sh

build:
	dotnet build Scheduler.sln -c Release -nologo

test:
	@bash scripts/test.sh

clean:
	dotnet clean Scheduler.sln -nologo -v quiet
	rm -rf .tools

.PHONY: run
# The local demo: a Consul dev agent, the operator on examples/ (serving dtask ui on 127.0.0.1:8080, or UI_PORT) and three
# executors; a live table of which node fired each slot; Ctrl-C (or DURATION=60) stops everything it started and prints a summary.
run:
	@bash scripts/install-consul.sh
	@dotnet build demo/Scheduler.Demo -c Release -nologo -v quiet -clp:ErrorsOnly
	@PATH="$(CURDIR)/.tools/bin:$$PATH" dotnet demo/Scheduler.Demo/bin/Release/net10.0/dtask-demo.dll \
	  --dtask operator/Scheduler.Cli/bin/Release/net10.0/dtask.dll --manifests examples $(if $(DURATION),--duration $(DURATION)) $(if $(UI_PORT),--ui-port $(UI_PORT))

# Self-contained single-file binaries for the nodes (deploy/, terraform/) and their SHA-512 sums.
PUBLISH_RIDS ?= linux-x64 linux-arm64

.PHONY: publish
publish:
	@set -e; for rid in $(PUBLISH_RIDS); do \
	  dotnet publish operator/Scheduler.Cli -c Release -r $$rid --self-contained \
	    -p:PublishSingleFile=true -p:DebugType=none -p:PublishDocumentationFiles=false -nologo -o artifacts/$$rid; \
	  (cd artifacts/$$rid && sha512sum dtask | cut -d' ' -f1 > dtask.sha512); \
	  echo "artifacts/$$rid/dtask sha512 $$(cat artifacts/$$rid/dtask.sha512)"; \
	done

# Exactly-once under faults (docs/BENCHMARKS.md, "Chaos"): a three-server Consul cluster, five executor processes in
# their own network namespaces, tasks at 1-2 s periods and a seeded fault schedule (partitions, lost answers, hung
# servers, skewed and jumping clocks, kills), then an invariant checker. Writes docs/benchmarks/chaos.json, the timeline
# picture and the chaos section of docs/BENCHMARKS.md; exits non-zero on a violation. CHAOS_SEED=N replays a run.
CHAOS_DURATION ?= 600

.PHONY: chaos
chaos:
	@bash scripts/install-consul.sh
	@bash scripts/install-chaos-tools.sh
	dotnet build operator/Scheduler.Cli -c Release -nologo -v quiet -clp:ErrorsOnly
	dotnet build chaos/Scheduler.Chaos -c Release -nologo -v quiet -clp:ErrorsOnly
	PATH="$(CURDIR)/.tools/bin:$$PATH" dotnet chaos/Scheduler.Chaos/bin/Release/net10.0/Dtask.Chaos.dll \
	  --duration $(CHAOS_DURATION) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED)) --out docs/benchmarks/chaos.json --markdown docs/BENCHMARKS.md

# The checker proven on a real defect: the executors built in configuration ChaosDefect (missed markers not gated by the
# skew guard, a defect fixed earlier; no release or debug build contains it) under a short chaos run. Exits 0 only when
# the checker reports violations; writes docs/benchmarks/chaos-defect.json and the defect section of docs/BENCHMARKS.md.
CHAOS_DEFECT_DURATION ?= 60

.PHONY: chaos-defect
chaos-defect:
	@bash scripts/install-consul.sh
	@bash scripts/install-chaos-tools.sh
	dotnet build operator/Scheduler.Cli -c ChaosDefect -nologo -v quiet -clp:ErrorsOnly
	dotnet build chaos/Scheduler.Chaos -c Release -nologo -v quiet -clp:ErrorsOnly
	PATH="$(CURDIR)/.tools/bin:$$PATH" dotnet chaos/Scheduler.Chaos/bin/Release/net10.0/Dtask.Chaos.dll \
	  --duration $(CHAOS_DEFECT_DURATION) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED)) --dtask operator/Scheduler.Cli/bin/ChaosDefect/net10.0/dtask.dll \
	  --defect ungated-markers --out docs/benchmarks/chaos-defect.json --markdown docs/BENCHMARKS.md

# Benchmarks (docs/BENCHMARKS.md): fire latency, Consul cost per fire, scale, reconcile and footprint, measured against
# a real Consul agent beside cron + `consul lock` and the original period check. Not part of `make test` (too long).
.PHONY: bench
bench:
	@bash scripts/install-consul.sh
	@dotnet build operator/Scheduler.Cli -c Release -nologo -v quiet -clp:ErrorsOnly
	@dotnet build bench/Scheduler.Bench -c Release -nologo -v quiet -clp:ErrorsOnly
	@PATH="$(CURDIR)/.tools/bin:$$PATH" $(if $(BENCH),BENCH="$(BENCH)") $(if $(BENCH_QUICK),BENCH_QUICK="$(BENCH_QUICK)") \
	  dotnet bench/Scheduler.Bench/bin/Release/net10.0/dtask-bench.dll

# Property tests of the manifest reader (generated and mutated manifests) at length; `make test` runs a few hundred
# cases. A failing input is written to tests/fixtures/property/, which every test run reads from then on.
FUZZ_ITERATIONS ?= 20000

.PHONY: fuzz
fuzz:
	@dotnet build tests/Scheduler.Core.Tests -c Release -nologo -v quiet -clp:ErrorsOnly
	DTASK_PROPERTY_ITERATIONS=$(FUZZ_ITERATIONS) dotnet test tests/Scheduler.Core.Tests -c Release --no-build -nologo \
	  --filter "FullyQualifiedName~ManifestPropertyTests|FullyQualifiedName~KvValuePropertyTests"
