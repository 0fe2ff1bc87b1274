namespace Dtask.Bench.Report;

/// <summary>
/// One measured figure. A distribution has <see cref="Median"/> and <see cref="P99"/>; a total or a rate has
/// <see cref="Value"/> (sometimes both).
/// </summary>
/// <param name="Scenario">The scenario (<c>latency</c>, <c>cost</c>, ...).</param>
/// <param name="Metric">What is measured, such as <c>fire latency (witness)</c>.</param>
/// <param name="System">dtask, or a baseline (<c>consul-lock</c>, <c>cas-check</c>).</param>
/// <param name="Setup">The setup, such as <c>3 executors, 100 tasks every 1s, 60 s</c>.</param>
/// <param name="Unit">The unit.</param>
/// <param name="Median">Median of the distribution.</param>
/// <param name="P99">99th percentile.</param>
/// <param name="Value">A single value (total, mean, rate).</param>
/// <param name="Samples">Sample size.</param>
internal sealed record Figure(string Scenario, string Metric, string System, string Setup, string Unit,
    double? Median = null, double? P99 = null, double? Value = null, long? Samples = null)
{
    /// <summary>A figure from a distribution (null statistics when empty).</summary>
    public static Figure From(string scenario, string metric, string system, string setup, string unit, Distribution? d, double? value = null) =>
        new(scenario, metric, system, setup, unit, d?.Median, d?.P99, value, d?.Count);
}

/// <summary>A goal of the benchmark and whether this run met it.</summary>
/// <param name="Goal">The goal, such as <c>fire latency p99 under 50 ms</c>.</param>
/// <param name="Measured">The measured number.</param>
/// <param name="Met">True when met.</param>
/// <param name="Limit">When not met: what limits it, with numbers.</param>
internal sealed record GoalCheck(string Goal, string Measured, bool Met, string? Limit = null);

/// <summary>A line (or points) of a plot.</summary>
/// <param name="Name">Legend text.</param>
/// <param name="X">X values.</param>
/// <param name="Y">Y values.</param>
internal sealed record PlotSeries(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y);

/// <summary>A plot a scenario asks for.</summary>
/// <param name="File">The PNG's file name.</param>
/// <param name="Title">Its title.</param>
/// <param name="XLabel">X axis label.</param>
/// <param name="YLabel">Y axis label.</param>
/// <param name="Series">Its lines.</param>
/// <param name="LogX">A logarithmic X axis.</param>
internal sealed record PlotSpec(string File, string Title, string XLabel, string YLabel, IReadOnlyList<PlotSeries> Series, bool LogX = false);

/// <summary>What one scenario measured.</summary>
/// <param name="Name">Scenario name.</param>
/// <param name="Seconds">How long it ran.</param>
/// <param name="Figures">Its figures.</param>
/// <param name="Goals">Goals it checks.</param>
/// <param name="Notes">Facts worth reading beside the figures (background load, limits, warnings).</param>
/// <param name="Plots">Plots to draw (not written to JSON).</param>
/// <param name="Images">The PNG files drawn from <paramref name="Plots"/>, relative to the results folder.</param>
/// <param name="RanAt">When the scenario ran.</param>
/// <param name="LoadAverageAtStart">The machine's load averages (1, 5, 15 min) when it started.</param>
internal sealed record ScenarioResult(string Name, double Seconds, IReadOnlyList<Figure> Figures, IReadOnlyList<GoalCheck> Goals,
    IReadOnlyList<string> Notes, [property: System.Text.Json.Serialization.JsonIgnore] IReadOnlyList<PlotSpec> Plots,
    IReadOnlyList<string>? Images = null, DateTimeOffset? RanAt = null, string? LoadAverageAtStart = null);

/// <summary>The machine a run came from, read at run time.</summary>
internal sealed record MachineInfo(string Cpu, int Cores, double MemoryGiB, string Os, string Kernel, string Dotnet, string Consul,
    string LoadAverageAtStart, string Commit);

/// <summary>The whole run, as written to <c>docs/benchmarks/results.json</c>.</summary>
internal sealed record BenchReport(DateTimeOffset StartedAt, double Seconds, bool Quick, IReadOnlyList<string> Scenarios, MachineInfo Machine,
    IReadOnlyList<ScenarioResult> Results);
