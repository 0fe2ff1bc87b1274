using System.Globalization;

namespace Dtask.Bench;

/// <summary>
/// What to run and where, from the environment: <c>BENCH</c> (comma-separated scenario names; all when unset),
/// <c>BENCH_QUICK=1</c> (short durations and fewer tasks: a smoke run, written to <c>artifacts/bench-quick/</c> unless
/// <c>BENCH_OUT</c> says otherwise), <c>BENCH_SCALE_TASKS</c>, <c>BENCH_DTASK</c> (the <c>dtask.dll</c> to run as executors).
/// </summary>
/// <param name="Repository">The repository root (where <c>Scheduler.sln</c> is).</param>
/// <param name="Scenarios">The scenarios to run, in order.</param>
/// <param name="Quick">Short durations.</param>
/// <param name="OutputFolder">Where results.json and the PNGs go.</param>
/// <param name="MarkdownFile">The report page to update, or null in quick runs.</param>
/// <param name="DtaskDll">The executor program.</param>
/// <param name="ScaleTasks">Tasks in the scale scenario.</param>
internal sealed record BenchSettings(string Repository, IReadOnlyList<string> Scenarios, bool Quick, string OutputFolder, string? MarkdownFile, string DtaskDll, int ScaleTasks)
{
    /// <summary>
    /// Every scenario, in the order they run: those that need a quiet machine first (process start, scale, reconcile,
    /// footprint), those beside <c>consul lock</c> last (its processes can pile up and load the machine for minutes).
    /// </summary>
    public static IReadOnlyList<string> AllScenarios { get; } = ["spawn", "scale", "reconcile", "footprint", "backstop", "latency", "cost", "baseline"];

    /// <summary>A duration: <paramref name="full"/> seconds, or <paramref name="quick"/> in quick runs.</summary>
    public int Seconds(int full, int quick) => Quick ? quick : full;

    /// <summary>Reads the settings; throws <see cref="ArgumentException"/> for an unknown scenario.</summary>
    public static BenchSettings FromEnvironment()
    {
        var repository = FindRepository();
        var quick = Environment.GetEnvironmentVariable("BENCH_QUICK") is "1" or "true" or "yes";
        var selected = (Environment.GetEnvironmentVariable("BENCH") ?? "")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => s.ToLowerInvariant()).ToList();
        var unknown = selected.Where(s => !AllScenarios.Contains(s)).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException($"unknown scenario(s) {string.Join(", ", unknown)}; known: {string.Join(", ", AllScenarios)}");
        }

        var scenarios = selected.Count == 0 ? AllScenarios : [.. AllScenarios.Where(selected.Contains)];
        var output = Environment.GetEnvironmentVariable("BENCH_OUT") is { Length: > 0 } o
            ? Path.GetFullPath(o)
            : Path.Combine(repository, quick ? "artifacts/bench-quick" : "docs/benchmarks");
        var markdown = quick && Environment.GetEnvironmentVariable("BENCH_OUT") is not { Length: > 0 } ? null : Path.Combine(repository, "docs", "BENCHMARKS.md");
        if (Environment.GetEnvironmentVariable("BENCH_OUT") is { Length: > 0 })
        {
            markdown = Path.Combine(output, "BENCHMARKS.md");
        }

        var dtask = Environment.GetEnvironmentVariable("BENCH_DTASK") is { Length: > 0 } d
            ? Path.GetFullPath(d)
            : Path.Combine(repository, "operator/Scheduler.Cli/bin/Release/net10.0/dtask.dll");
        var scaleTasks = int.TryParse(Environment.GetEnvironmentVariable("BENCH_SCALE_TASKS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : quick ? 1000 : 10_000;
        return new BenchSettings(repository, scenarios, quick, output, markdown, dtask, scaleTasks);
    }

    private static string FindRepository() =>
        Dtask.Testing.RepositoryRoot.Find(Environment.CurrentDirectory)
        ?? Dtask.Testing.RepositoryRoot.Find(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException("cannot find the repository (no Scheduler.sln above the working directory)");
}
