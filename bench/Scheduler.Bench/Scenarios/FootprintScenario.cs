using System.Diagnostics;
using System.Globalization;
using Dtask.Bench.Consul;
using Dtask.Bench.Executors;
using Dtask.Bench.Processes;
using Dtask.Bench.Report;
using Dtask.Bench.Workload;
using Dtask.Core.State;

namespace Dtask.Bench.Scenarios;

/// <summary>
/// Footprint: an executor process's time from start to <c>READY=1</c> on its notify socket (registered, tasks loaded),
/// and its resident memory once idle, with 0 and with 100 tasks (hourly, so none fires).
/// </summary>
internal sealed class FootprintScenario(BenchSettings settings) : IScenario
{
    /// <inheritdoc />
    public string Name => "footprint";

    /// <inheritdoc />
    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var figures = new List<Figure>();
        var notes = new List<string>();
        var repeats = settings.Quick ? 2 : 5;
        var settle = TimeSpan.FromSeconds(settings.Seconds(10, 3));
        await using var consul = await ConsulUnderTest.StartAsync(cancellationToken);
        var run = 0;
        foreach (var count in new[] { 0, 100 })
        {
            Console.Error.WriteLine($"  dtask: footprint with {count} tasks, {repeats} starts");
            var readies = new List<double>();
            var rss = new List<double>();
            for (var i = 0; i < repeats; i++)
            {
                run++;
                var prefix = string.Create(CultureInfo.InvariantCulture, $"footprint-{run:00}/");
                using var loader = new TaskLoader(consul.Client, new KvLayout(prefix));
                await loader.LoadAsync(BenchTask.Many(count, name => new BenchTask(name, null, "1h", ["/bin/true"])), cancellationToken);
                var log = new ExecutorLog();
                await using var executor = ExecutorProcess.Start(settings.DtaskDll, "node-fp", prefix, consul.Agent.HostPort, log);
                readies.Add((await executor.WaitReadyAsync(TimeSpan.FromSeconds(60), cancellationToken)).TotalMilliseconds);
                await Task.Delay(settle, cancellationToken);
                if (executor.ProcessId is { } pid && ProcessUsage.Read(pid, 0) is { } usage)
                {
                    rss.Add(usage.RssBytes / 1048576.0);
                }
            }

            var setup = string.Create(CultureInfo.InvariantCulture, $"1 executor process, {count} tasks, {repeats} starts");
            figures.Add(Figure.From(Name, "start → READY=1 (notify socket)", "dtask", setup, "ms", Distribution.Of(readies)));
            figures.Add(Figure.From(Name, $"idle memory (RSS {settle.TotalSeconds:0} s after READY)", "dtask", setup, "MiB", Distribution.Of(rss)));
        }

        notes.Add("footprint: the executor runs as `dotnet dtask.dll executor` (framework-dependent); a self-contained single-file build starts without the `dotnet` host's probing.");
        return new ScenarioResult(Name, clock.Elapsed.TotalSeconds, figures, [], notes, []);
    }
}
