using System.Diagnostics;
using System.Globalization;
using Dtask.Bench.Report;
using Dtask.Bench.Workload;

namespace Dtask.Bench.Scenarios;

/// <summary>
/// Fire latency: 3 executor processes, 100 tasks every second, 60 s; then 10 and 30 tasks, beside the baselines at the
/// same herd sizes (20 s each). Measured two ways: by the witness (the child's own
/// clock reading, bash start included) and by the executor's log (slot to the child's start as the executor saw it). The
/// witness's own cost (starting bash) is measured apart.
/// </summary>
internal sealed class LatencyScenario(BenchSettings settings) : IScenario
{
    private const double GoalP99Ms = 50;

    /// <inheritdoc />
    public string Name => "latency";

    /// <inheritdoc />
    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var tasks = settings.Quick ? 30 : 100;
        var measurement = await new FireBench(settings).RunAsync(new FireSetup(FireSystem.DtaskProcesses, 3, tasks, settings.Seconds(60, 15), 0), cancellationToken);
        var overhead = await WitnessOverheadAsync(settings.Quick ? 30 : 200, cancellationToken);
        var figures = FireFigures.Of(Name, measurement).ToList();
        figures.Add(Figure.From(Name, "witness cost: exec returned → bash reads its clock", "bash", "sequential, machine otherwise idle", "ms", overhead.Bash));
        figures.Add(Figure.From(Name, "process start from .NET (Process.Start)", "bash", "sequential, machine otherwise idle", "ms", overhead.Spawn));
        var witness = Distribution.Of(measurement.Tally.LatenciesMs);
        var logged = Distribution.Of(measurement.ExecutorDelaysMs);
        var met = witness is not null && witness.P99 < GoalP99Ms;
        var goals = new List<GoalCheck>
        {
            new($"fire latency p99 under {GoalP99Ms:0} ms (3 executors, {tasks} tasks every 1 s)",
                witness is null ? "no fires" : $"witness p99 {witness.P99:0.0} ms (median {witness.Median:0.0}); executor log p99 {logged?.P99:0.0} ms (median {logged?.Median:0.0}); bash start median {overhead.Bash?.Median:0.0} ms",
                met,
                met ? null : Limit(measurement, witness, logged, overhead.Bash)),
        };
        var plot = new PlotSpec("latency.png", $"Fire latency, 3 executors, {tasks} tasks every 1 s", "latency (ms)", "fraction of fires at or below",
        [
            Cdf("witness (child's clock)", measurement.Tally.LatenciesMs),
            Cdf("executor log (child start)", measurement.ExecutorDelaysMs),
        ]);

        // Latency against the herd (tasks due in the same second) on 3 nodes, dtask beside the baselines. `consul lock`
        // starts a process per node per task per second, each holding on for up to its 500 ms timeout: at 30 tasks
        // they pile up faster than two cores end them (load average over 400), so it is measured at 10 only.
        var herd = new List<FireMeasurement> { measurement };
        var bench = new FireBench(settings);
        var herdSeconds = settings.Seconds(20, 8);
        foreach (var (system, sizes) in new (FireSystem, int[])[] { (FireSystem.DtaskProcesses, [10, 30]), (FireSystem.CasCheck, [10, 30, tasks]), (FireSystem.ConsulLock, [10]) })
        {
            foreach (var size in sizes.Where(n => n <= tasks).Distinct())
            {
                herd.Add(await bench.RunAsync(new FireSetup(system, 3, size, herdSeconds, 0), cancellationToken));
            }
        }

        figures.AddRange(herd.Skip(1).SelectMany(m => FireFigures.Of(Name, m).Where(f => f.Metric is FireFigures.Latency or FireFigures.ExecutorDelay or FireFigures.Duplicates)));
        var byHerd = new PlotSpec("latency-herd.png", "Fire latency p99 (witness) against the herd, 3 nodes", "tasks due in the same second", "p99 latency (ms)",
            [.. herd.GroupBy(m => m.Setup.SystemName).Select(g => new PlotSeries(g.Key + " p99",
                [.. g.OrderBy(m => m.Setup.Tasks).Select(m => (double)m.Setup.Tasks)],
                [.. g.OrderBy(m => m.Setup.Tasks).Select(m => Distribution.Of(m.Tally.LatenciesMs)?.P99 ?? double.NaN)]))], LogX: true);
        return new ScenarioResult(Name, clock.Elapsed.TotalSeconds, figures, goals, [.. herd.SelectMany(FireFigures.Notes)], [plot, byHerd]);
    }

    private static string Limit(FireMeasurement m, Distribution? witness, Distribution? logged, Distribution? bash) =>
        string.Create(CultureInfo.InvariantCulture,
            $"the executor's own delay is p99 {logged?.P99:0.0} ms (median {logged?.Median:0.0}), so the tail is in the executor, not the witness (bash start median {bash?.Median:0.0} ms); the executors used only {m.ExecutorCores:0.00} cores and Consul {m.ConsulCores:0.00} of {Environment.ProcessorCount}, while the machine's load average was {Report.MachineProbe.LoadAverage()}: the {m.Setup.Tasks} claims (each a consistent read and a transaction) and {m.Setup.Tasks} process starts due at the same instant wait for a CPU (witness max {witness?.Max:0} ms)");

    /// <summary>A CDF line of <paramref name="values"/>.</summary>
    public static PlotSeries Cdf(string name, IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var sorted = values.Order().ToArray();
        var step = Math.Max(1, sorted.Length / 500);
        var xs = new List<double>();
        var ys = new List<double>();
        for (var i = 0; i < sorted.Length; i += step)
        {
            xs.Add(sorted[i]);
            ys.Add((i + 1.0) / sorted.Length);
        }

        if (sorted.Length > 0)
        {
            xs.Add(sorted[^1]);
            ys.Add(1);
        }

        return new PlotSeries(name, xs, ys);
    }

    /// <summary>The cost of the witness itself: .NET's process start, then bash's start until it reads <c>$EPOCHREALTIME</c>.</summary>
    public static async Task<(Distribution? Spawn, Distribution? Bash)> WitnessOverheadAsync(int runs, CancellationToken cancellationToken)
    {
        var spawn = new List<double>();
        var bash = new List<double>();
        for (var i = 0; i < runs; i++)
        {
            var start = new ProcessStartInfo("/bin/bash") { UseShellExecute = false, RedirectStandardOutput = true };
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add("echo $EPOCHREALTIME");
            start.Environment["LC_ALL"] = "C";
            var before = SlotClock.Now;
            var beforeTicks = Stopwatch.GetTimestamp();
            using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start bash");
            var startedTicks = Stopwatch.GetTimestamp();
            var text = await process.StandardOutput.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            if (double.TryParse(text.Trim().Replace(',', '.'), NumberStyles.Float, CultureInfo.InvariantCulture, out var at))
            {
                var spawnMs = Stopwatch.GetElapsedTime(beforeTicks, startedTicks).TotalMilliseconds;
                spawn.Add(spawnMs);
                bash.Add((at - before) * 1000 - spawnMs);
            }
        }

        return (Distribution.Of(spawn), Distribution.Of(bash));
    }
}
