using System.Globalization;
using System.Text;

namespace Dtask.Bench.Report;

/// <summary>
/// Writes the benchmark part of <c>docs/BENCHMARKS.md</c>: everything between <see cref="Begin"/> and
/// <see cref="End"/>. Whatever else the page holds (other sections, such as the chaos results) is kept as it is.
/// </summary>
internal static class MarkdownReport
{
    /// <summary>The line that opens the generated part.</summary>
    public const string Begin = "<!-- bench:begin (written by make bench; edit bench/Scheduler.Bench/Report/MarkdownReport.cs instead) -->";

    /// <summary>The line that closes it.</summary>
    public const string End = "<!-- bench:end -->";

    /// <summary>Updates <paramref name="path"/> with <paramref name="report"/>; images are under <paramref name="imageFolder"/> (relative to the page).</summary>
    public static void Write(string path, BenchReport report, string imageFolder)
    {
        var section = Render(report, imageFolder);
        var existing = File.Exists(path) ? File.ReadAllText(path) : "";
        File.WriteAllText(path, Merge(existing, section));
    }

    /// <summary>The page with its generated part replaced by <paramref name="section"/> (or added after the title).</summary>
    public static string Merge(string existing, string section)
    {
        ArgumentNullException.ThrowIfNull(existing);
        ArgumentNullException.ThrowIfNull(section);
        var begin = existing.IndexOf("<!-- bench:begin", StringComparison.Ordinal);
        var end = existing.IndexOf(End, StringComparison.Ordinal);
        if (begin >= 0 && end > begin)
        {
            return existing[..begin] + section + existing[(end + End.Length)..];
        }

        if (existing.Length == 0)
        {
            return "# Benchmarks\n\n" + section + "\n";
        }

        if (existing.StartsWith("# ", StringComparison.Ordinal))
        {
            var titleEnd = existing.IndexOf('\n', StringComparison.Ordinal);
            return titleEnd < 0
                ? existing + "\n\n" + section + "\n"
                : existing[..(titleEnd + 1)] + "\n" + section + "\n" + existing[(titleEnd + 1)..];
        }

        return section + "\n\n" + existing;
    }

    private static string Render(BenchReport report, string imageFolder)
    {
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine(Begin);
        md.AppendLine(inv, $"""
            `make bench` starts a real Consul agent (a fresh dev agent for each measurement, on loopback ports), runs dtask's
            executors and the baselines against it, and writes these figures, `docs/benchmarks/results.json` and the plots.
            Writes and HTTP requests are counted **on the agent's side** (its Prometheus counters: `consul.raft.apply` for
            writes — every KV set, CAS, lock, transaction, session create/destroy is one, failed CAS included — and the sum of
            `consul.http.*` request counts), the same way for dtask and the baselines.

            ## Latest run

            | | |
            |---|---|
            | when | {report.StartedAt:yyyy-MM-dd HH:mm} UTC{(report.Quick ? " (quick mode)" : "")}, `make bench` took {report.Seconds / 60:0.0} min |
            | machine | {report.Machine.Cores} cores ({report.Machine.Cpu}), {report.Machine.MemoryGiB:0.#} GiB memory |
            | OS | {report.Machine.Os}, Linux {report.Machine.Kernel} |
            | .NET | {report.Machine.Dotnet} |
            | Consul | {report.Machine.Consul} |
            | commit | {(report.Machine.Commit.Length > 0 ? report.Machine.Commit : "unknown")} |
            | load average at start | {report.Machine.LoadAverageAtStart} (1, 5, 15 min) |

            Other work running on the machine during the run skews every figure here (latency tails most); the load average at
            the start of each scenario is in `results.json`. One agent and every executor share the same cores, which a real
            fleet does not.

            ## Goals

            | goal | measured | met | what limits it |
            |---|---|---|---|
            """);
        foreach (var goal in report.Results.SelectMany(r => r.Goals))
        {
            md.AppendLine(inv, $"| {Cell(goal.Goal)} | {Cell(goal.Measured)} | {(goal.Met ? "yes" : "**no**")} | {Cell(goal.Limit ?? "")} |");
        }

        md.AppendLine();
        md.AppendLine("## Figures");
        md.AppendLine();
        md.AppendLine("Medians and 99th percentiles; \"value\" is a total, a mean or a rate. \"vs dtask\" is the baseline's figure divided by dtask's in the same setup.");
        var rows = FigureTable.Rows(report.Results);
        foreach (var result in report.Results)
        {
            md.AppendLine();
            md.AppendLine(inv, $"### {result.Name}");
            md.AppendLine();
            md.AppendLine(inv, $"{Describe(result.Name)} Ran {result.RanAt:yyyy-MM-dd HH:mm} UTC for {result.Seconds:0} s; load average at its start {result.LoadAverageAtStart}.");
            md.AppendLine();
            md.AppendLine("| metric | system | setup | median | p99 | value | unit | vs dtask |");
            md.AppendLine("|---|---|---|---:|---:|---:|---|---:|");
            foreach (var row in rows.Where(r => r.Figure.Scenario == result.Name))
            {
                var f = row.Figure;
                md.AppendLine(inv, $"| {Cell(f.Metric)} | {f.System} | {Cell(f.Setup)} | {FigureTable.Show(f.Median)} | {FigureTable.Show(f.P99)} | {FigureTable.Show(f.Value)} | {f.Unit} | {FigureTable.ShowRatio(row.Ratio)} |");
            }

            foreach (var image in result.Images ?? [])
            {
                md.AppendLine();
                md.AppendLine(inv, $"![{result.Name}]({imageFolder}/{image})");
            }

            if (result.Notes.Count > 0)
            {
                md.AppendLine();
                foreach (var note in result.Notes)
                {
                    md.AppendLine(inv, $"- {note}");
                }
            }
        }

        md.AppendLine();
        md.AppendLine("""
            ## How to reproduce

            ```sh
            make bench                              # every scenario, about 20 minutes; updates this page
            make bench BENCH=latency,cost           # some scenarios (the others' last results are kept)
            make bench BENCH_QUICK=1                # a short smoke run, written to artifacts/bench-quick/
            make bench BENCH=spawn                  # the child start alone (no Consul), under a minute
            ```

            Requirements are those of `make test` (the .NET 10 SDK; Consul is installed by `make tools` when it is not on
            `PATH`; the same `consul` binary runs the agent and the `consul lock` baseline). Other knobs: `BENCH_SCALE_TASKS`
            (default 10000), `BENCH_SCALE_SIZES` (a curve, e.g. `1000,10000,30000`: tasks against CPU, memory and fire delay),
            `BENCH_COST_SIZES` (e.g. `1,3,10,30,300`), `BENCH_BASELINE_TASKS` (default 10), `BENCH_OUT` (another output folder).

            ### How each figure is taken

            - **Fire latency** is measured by an independent witness: every task runs
              `/bin/bash -c 'echo "$DTASK_TASK $DTASK_SLOT $DTASK_NODE $EPOCHREALTIME" >> FILE'`, so the child writes its own
              start time (bash's `$EPOCHREALTIME`, no extra `date` process) next to the slot it was given. Latency = that time
              minus the slot's nominal instant (the tasks have no jitter, so the fire time is the slot). The witness includes
              the start of bash itself, measured apart as "witness cost". The executor's own figure ("fire delay logged by the
              executor") is the `FireDelayMs` of its `child N started` log line: from the fire time to the moment the child's
              process was started, as the executor saw it.
            - **Writes and requests per fire**: the agent's counters sampled every second, at the middle of the second
              (one-second tasks fire near its start); for each second, (Raft applies − idle background) ÷ slots fired in it.
              The idle background is measured first with the same executors and the tasks suspended, and reported apart.
            - **Duplicates** (a slot run more than once) and **missed slots** (never run) are counted from the witness lines.
              In the scale scenario, missed slots are those without a `succeeded` history record in Consul.
            - **CPU and memory** come from `/proc/<pid>/stat` (user + system time) and `/proc/<pid>/status` (`VmRSS`). In-process
              executors (the cost scenario) share the benchmark's own process, so their CPU includes the harness.
            - **Baselines**: `consul-lock` is cron + `consul lock -n=1 -timeout=500ms -shell=false PREFIX/locks/TASK CMD...` on
              every node at every slot (the timeout is half the period, so a node gives up before the next slot; without it
              every node runs every slot in turn). The lock serializes runs, it does not deduplicate them: a node that gets
              the lock after the winner finished runs the slot again. `cas-check` is the original project's period check:
              GET the key's value (the last run's timestamp), GET the key again for its index, and when a period has passed
              PUT the current time with `?cas=index`, running the command when the CAS wins; with the value and the index read
              in two requests, two nodes can both win. The original made each request with `curl`; here they are made
              in-process, which only narrows that window.
            """);
        md.AppendLine(End);
        return md.ToString();
    }

    private static string Describe(string scenario) => scenario switch
    {
        "latency" => "dtask's fire latency: 3 executor processes, 100 tasks every second; then the latency against the herd (10, 30, 100 tasks due in the same second on 3 nodes) for dtask and the baselines.",
        "baseline" => "The same work on 3 nodes, three ways: dtask, cron + `consul lock`, and the original period check by CAS.",
        "cost" => "Consul cost per fire as the fleet grows (dtask executors hosted in one process), beside the baselines.",
        "scale" => "Many one-minute tasks on 3 executor processes and one agent.",
        "backstop" => "Dead nodes at the top of the ranking: up to half of an in-process fleet cut off from Consul at once, 2 s before a slot of 20 tasks every 10 s (the cut nodes' registrations stay listed and ranked until their sessions expire), chosen so that half the tasks have their first K = 3 ranked nodes dead; each slot by how many of its first ranks were dead.",
        "reconcile" => "Manifests from a directory into KV by the operator's directory source, then a resync of the unchanged directory.",
        "footprint" => "One executor process: start to READY=1 on its notify socket, and idle memory.",
        "spawn" => "One child start, four ways: the executor's (`setsid` exec'd by .NET's Process, then the check that the child leads its group), the same exec without that check (`setsid-exec`), glibc `posix_spawn` with `POSIX_SPAWN_SETSID`, and a bare `Process.Start` with no process group of its own; \"vs dtask\" is the other way's figure divided by the executor's.",
        _ => "",
    };

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
}
