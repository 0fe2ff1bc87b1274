using System.Diagnostics;
using System.Runtime.InteropServices;
using Dtask.Bench;
using Dtask.Bench.Report;
using Dtask.Bench.Scenarios;

// make bench: runs the selected scenarios against real Consul agents, prints the figures, and writes results.json,
// the plots and the benchmark part of docs/BENCHMARKS.md. Everything it starts is stopped on exit, failure or Ctrl-C.
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stop.Cancel();
});

BenchSettings settings;
try
{
    settings = BenchSettings.FromEnvironment();
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"dtask-bench: {e.Message}");
    return 2;
}

if (settings.Scenarios.Any(s => s != "spawn") && !File.Exists(settings.DtaskDll))
{
    Console.Error.WriteLine($"dtask-bench: {settings.DtaskDll} is missing; build the solution first (make build), or set BENCH_DTASK");
    return 2;
}

var clock = Stopwatch.StartNew();
var startedAt = DateTimeOffset.UtcNow;
var machine = await MachineProbe.ReadAsync(settings.Repository, stop.Token);
Console.Error.WriteLine($"dtask-bench: {string.Join(", ", settings.Scenarios)}{(settings.Quick ? " (quick)" : "")} on {machine.Cores} cores, load average {machine.LoadAverageAtStart}; results in {settings.OutputFolder}");
var results = new List<ScenarioResult>();
var failed = 0;
foreach (var name in settings.Scenarios)
{
    IScenario scenario = name switch
    {
        "latency" => new LatencyScenario(settings),
        "baseline" => new BaselineScenario(settings),
        "cost" => new CostScenario(settings),
        "scale" => new ScaleScenario(settings),
        "reconcile" => new ReconcileScenario(settings),
        "spawn" => new SpawnScenario(settings),
        "backstop" => new BackstopScenario(settings),
        _ => new FootprintScenario(settings),
    };
    Console.Error.WriteLine($"[{clock.Elapsed:mm\\:ss}] {name}");
    var load = MachineProbe.LoadAverage();
    try
    {
        var result = await scenario.RunAsync(stop.Token);
        var images = result.Plots.Select(p => Path.GetFileName(PlotWriter.Write(p, settings.OutputFolder))).ToList();
        results.Add(result with
        {
            Images = images,
            RanAt = DateTimeOffset.UtcNow,
            LoadAverageAtStart = load,
            Notes = [.. result.Notes, $"{name}: load average {load} at the start, {MachineProbe.LoadAverage()} at the end (1, 5, 15 min; {Environment.ProcessorCount} cores)."],
        });
    }
    catch (OperationCanceledException) when (stop.IsCancellationRequested)
    {
        Console.Error.WriteLine("dtask-bench: interrupted; nothing is written");
        return 130;
    }
    catch (Exception e) when (e is InvalidOperationException or IOException or Dtask.Consul.Errors.ConsulException or HttpRequestException or TimeoutException
        or OperationCanceledException)
    {
        // One scenario's failure (e.g. the agent's metrics not answering within the client's timeout under `consul lock`'s
        // load) costs that scenario only: the others are still written.
        failed++;
        Console.Error.WriteLine($"dtask-bench: scenario {name} failed: {e}");
    }
}

var report = new BenchReport(startedAt, Math.Round(clock.Elapsed.TotalSeconds, 1), settings.Quick, settings.Scenarios, machine, results);
var resultsPath = Path.Combine(settings.OutputFolder, "results.json");
var merged = ResultsFile.Merge(report, ResultsFile.Read(resultsPath));
ResultsFile.Write(resultsPath, merged);
if (settings.MarkdownFile is { } markdown)
{
    var imageFolder = Path.GetRelativePath(Path.GetDirectoryName(markdown)!, settings.OutputFolder).Replace('\\', '/');
    MarkdownReport.Write(markdown, merged, imageFolder);
}

ConsoleReport.Print(report);
Console.Error.WriteLine($"dtask-bench: done in {clock.Elapsed:mm\\:ss}; wrote {resultsPath}{(settings.MarkdownFile is null ? "" : " and " + settings.MarkdownFile)}");
return failed == 0 ? 0 : 1;
