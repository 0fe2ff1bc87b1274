using System.Diagnostics;
using System.Globalization;
using Dtask.Bench.Baselines;
using Dtask.Bench.Report;

namespace Dtask.Bench.Scenarios;

/// <summary>
/// The same work on three nodes done three ways: dtask, cron + <c>consul lock</c>, and the original period check by
/// CAS. Fire latency, writes per fire and duplicates, side by side. The task count is smaller than in
/// <see cref="LatencyScenario"/> because every <c>consul lock</c> run is a process of its own on every node.
/// </summary>
internal sealed class BaselineScenario(BenchSettings settings) : IScenario
{
    /// <inheritdoc />
    public string Name => "baseline";

    /// <inheritdoc />
    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var tasks = int.TryParse(Environment.GetEnvironmentVariable("BENCH_BASELINE_TASKS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var t) && t > 0 ? t : 10;
        var seconds = settings.Seconds(60, 15);
        var bench = new FireBench(settings);
        var runs = new List<FireMeasurement>();
        foreach (var system in new[] { FireSystem.DtaskProcesses, FireSystem.ConsulLock, FireSystem.CasCheck })
        {
            runs.Add(await bench.RunAsync(new FireSetup(system, 3, tasks, seconds, 0), cancellationToken));
        }

        var figures = runs.SelectMany(m => FireFigures.Of(Name, m)).ToList();
        var notes = runs.SelectMany(FireFigures.Notes).ToList();
        notes.Add($"consul-lock runs `consul lock {ConsulLockNode.Flags} PREFIX/locks/TASK CMD...` on every node at every slot; cas-check reads the value, then the index, then PUTs ?cas=index, as the original script did.");
        var dtask = runs[0];
        var goals = new List<GoalCheck>
        {
            new("dtask: no slot run twice, none missed, with 3 nodes racing", $"{dtask.Tally.Duplicates} duplicates, {dtask.Tally.Missed} missed of {dtask.Tally.Expected} slots",
                dtask.Tally.Duplicates == 0 && dtask.Tally.Missed == 0,
                dtask.Tally.Duplicates == 0 && dtask.Tally.Missed == 0 ? null : "see the notes for the executors' warnings"),
        };
        var plot = new PlotSpec("baseline-latency.png", $"Fire latency, 3 nodes, {tasks} tasks every 1 s", "latency (ms, log scale)", "fraction of fires at or below",
            [.. runs.Select(m => LatencyScenario.Cdf(m.Setup.SystemName, m.Tally.LatenciesMs))], LogX: true);
        return new ScenarioResult(Name, clock.Elapsed.TotalSeconds, figures, goals, notes, [plot]);
    }
}
