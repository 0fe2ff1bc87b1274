using System.Diagnostics;
using System.Globalization;
using Dtask.Bench.Report;

namespace Dtask.Bench.Scenarios;

/// <summary>
/// Consul cost per fire for 1, 3, 10 and 30 executors (hosted in this process, so that 30 fit on a small machine; other
/// sizes with <c>BENCH_COST_SIZES</c>),
/// counted on the agent's side, with the idle background (tasks suspended) measured first and subtracted. The same
/// for the period check by CAS at every size, and for <c>consul lock</c> up to 3 nodes (beyond that its process per
/// node per task per second saturates this machine).
/// </summary>
internal sealed class CostScenario(BenchSettings settings) : IScenario
{
    private const double GoalWrites = 2.1;
    private const double GoalRequests = 8;

    /// <inheritdoc />
    public string Name => "cost";

    /// <inheritdoc />
    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        const int Tasks = 10;
        var seconds = settings.Seconds(20, 8);
        var idle = settings.Seconds(15, 6);
        int[] sizes = settings.Quick ? [1, 3, 10] : [1, 3, 10, 30];
        // BENCH_COST_SIZES=1,3,10,30,300 adds larger fleets of in-process executors (300 take about half an hour to start
        // on two cores, and saturate one agent there).
        int[] dtaskSizes = Environment.GetEnvironmentVariable("BENCH_COST_SIZES") is { Length: > 0 } listed
            ? [.. listed.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(n => int.Parse(n, CultureInfo.InvariantCulture))]
            : sizes;
        var bench = new FireBench(settings);
        var runs = new List<FireMeasurement>();
        foreach (var n in dtaskSizes)
        {
            runs.Add(await bench.RunAsync(new FireSetup(FireSystem.DtaskInProcess, n, Tasks, seconds, idle), cancellationToken));
        }

        foreach (var n in sizes)
        {
            runs.Add(await bench.RunAsync(new FireSetup(FireSystem.CasCheck, n, Tasks, seconds, 0), cancellationToken));
        }

        foreach (var n in sizes.Where(n => n <= 3))
        {
            runs.Add(await bench.RunAsync(new FireSetup(FireSystem.ConsulLock, n, Tasks, seconds, 0), cancellationToken));
        }

        var figures = runs.SelectMany(m => FireFigures.Of(Name, m)).ToList();
        var notes = runs.SelectMany(FireFigures.Notes).ToList();
        var dtask = runs.Where(m => m.Setup.System == FireSystem.DtaskInProcess).ToList();
        // Claims and finishes due together share transactions, so a fire costs at most two writes (its claim and its
        // finish) and less when several slots of an executor fall in the same instant: the bound, not flatness, is the goal.
        var measured = string.Join(", ", dtask.Select(m => string.Create(CultureInfo.InvariantCulture,
            $"{m.Setup.Nodes} executors: {m.WritesPerFireOverall:0.00} writes, {m.RequestsPerFireOverall:0.0} requests (fire path by URL: {m.FirePathWritesPerFire:0.00} writes, {m.FirePathRequestsPerFire:0.0} requests)")));
        // Beyond 30 executors on one agent, the standing requests (renewals, watches, stamps) of the fleet are many times
        // the fires' and drift between the idle window and the measured one: there the fire path counted by URL decides.
        static double Requests(FireMeasurement m) => m.Setup.Nodes > 30 && !double.IsNaN(m.FirePathRequestsPerFire) ? m.FirePathRequestsPerFire : m.RequestsPerFireOverall;
        static double Writes(FireMeasurement m) => m.Setup.Nodes > 30 && !double.IsNaN(m.FirePathWritesPerFire) ? m.FirePathWritesPerFire : m.WritesPerFireOverall;
        var worst = dtask.Max(Writes);
        var met = worst <= GoalWrites;
        var worstRequests = dtask.Max(Requests);
        var goals = new List<GoalCheck>
        {
            new($"at most {GoalWrites:0.0} Consul writes (Raft applies) per fire at any number of executors", measured, met,
                met ? null : string.Create(CultureInfo.InvariantCulture, $"worst {worst:0.00} writes per fire")),
            new($"at most {GoalRequests:0} Consul HTTP requests per fire at any number of executors", measured, worstRequests <= GoalRequests,
                worstRequests <= GoalRequests ? null : string.Create(CultureInfo.InvariantCulture, $"worst {worstRequests:0.0} requests per fire")),
        };
        var plots = new List<PlotSpec>
        {
            Plot("cost-writes.png", "Consul writes (Raft applies) per fire", "writes per fire", runs, m => m.WritesPerFireOverall, FirePath(dtask, m => m.FirePathWritesPerFire)),
            Plot("cost-requests.png", "Consul HTTP requests per fire", "requests per fire", runs, m => m.RequestsPerFireOverall, FirePath(dtask, m => m.FirePathRequestsPerFire)),
        };
        return new ScenarioResult(Name, clock.Elapsed.TotalSeconds, figures, goals, notes, plots);
    }

    private static PlotSpec Plot(string file, string title, string yLabel, IReadOnlyList<FireMeasurement> runs, Func<FireMeasurement, double> value, PlotSeries? extra = null) =>
        new(file, title + ", 10 tasks every 1 s", "executors / nodes", yLabel,
            [.. runs.GroupBy(m => m.Setup.SystemName).Select(g => new PlotSeries(g.Key, [.. g.Select(m => (double)m.Setup.Nodes)], [.. g.Select(value)])),
                .. extra is null ? Array.Empty<PlotSeries>() : [extra]], LogX: runs.Max(m => m.Setup.Nodes) > 30);

    private static PlotSeries FirePath(IReadOnlyList<FireMeasurement> dtask, Func<FireMeasurement, double> value) =>
        new("dtask, fire path only (by URL)", [.. dtask.Select(m => (double)m.Setup.Nodes)], [.. dtask.Select(value)]);
}
