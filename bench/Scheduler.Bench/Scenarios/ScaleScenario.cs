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
/// Scale: many tasks with one-minute schedules (<c>H * * * * *</c>: each fires once a minute at a second hashed from its
/// name, which spreads them over the minute) running <c>/bin/true</c> on 3 executor processes and one agent. Counts
/// missed slots from the history records in KV, and samples the executors' and Consul's CPU and memory.
/// </summary>
internal sealed class ScaleScenario(BenchSettings settings) : IScenario
{
    private const int SampleStep = 5;

    /// <inheritdoc />
    public string Name => "scale";

    /// <inheritdoc />
    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var points = new List<ScenarioResult>();
        // BENCH_SCALE_SIZES=1000,10000,30000 measures a curve (tasks against CPU, memory and fire delay); larger sizes run
        // two minutes each so that a curve fits in a bench run.
        int[] sizes = Environment.GetEnvironmentVariable("BENCH_SCALE_SIZES") is { Length: > 0 } listed
            ? [.. listed.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(n => int.Parse(n, CultureInfo.InvariantCulture))]
            : settings.Quick || settings.ScaleTasks <= 1000 ? [settings.ScaleTasks] : [1000, settings.ScaleTasks];
        var curve = new List<ScalePoint>();
        // Every fire is a child start, whose price on these machines varies several-fold between days: measured first,
        // on the quiet machine, and printed beside the figures it bounds.
        var childStart = await ChildStartCost.MeasureAsync(settings.Quick ? 50 : 200, cancellationToken);
        Console.Error.WriteLine($"  machine: {childStart.Describe()}");
        foreach (var count in sizes)
        {
            var (result, point) = await RunPointAsync(count, settings.Quick ? 1 : count <= 1000 ? 2 : count <= 10_000 ? 3 : 2, childStart, cancellationToken);
            points.Add(result);
            curve.Add(point);
        }

        var plots = points.SelectMany(p => p.Plots).ToList();
        if (curve.Count > 1)
        {
            double[] xs = [.. curve.Select(p => (double)p.Tasks)];
            plots.Add(new PlotSpec("scale-curve-cpu.png", "CPU against one-minute tasks (3 executors, one agent)", "tasks", "cores",
                [new PlotSeries("executors (sum)", xs, [.. curve.Select(p => p.ExecutorCores)]), new PlotSeries("Consul agent", xs, [.. curve.Select(p => p.ConsulCores)])]));
            plots.Add(new PlotSpec("scale-curve-memory.png", "Memory against one-minute tasks (3 executors, one agent)", "tasks", "MiB (largest RSS)",
                [new PlotSeries("executor", xs, [.. curve.Select(p => p.ExecutorMiB)]), new PlotSeries("Consul agent", xs, [.. curve.Select(p => p.ConsulMiB)])]));
            plots.Add(new PlotSpec("scale-curve-delay.png", "Fire delay p99 against one-minute tasks (3 executors, one agent)", "tasks", "fire delay p99 (ms)",
                [new PlotSeries("executor log", xs, [.. curve.Select(p => p.DelayP99Ms)])]));
        }

        var notes = points.SelectMany(p => p.Notes).ToList();
        if (curve.Count > 1)
        {
            notes.Add("scale curve: " + string.Join("; ", curve.Select(p => string.Create(CultureInfo.InvariantCulture,
                $"{p.Tasks} tasks: {p.Missed} missed, executors {p.ExecutorCores:0.00} cores and {p.ExecutorMiB:0} MiB, Consul {p.ConsulCores:0.00} cores and {p.ConsulMiB:0} MiB, fire delay p99 {p.DelayP99Ms:0} ms"))) + ".");
        }

        // The standing cost of a task count too large to fire on these cores: loaded, READY, idle (BENCH_SCALE_STANDING,
        // default 100,000; 0 leaves it out).
        var standing = Environment.GetEnvironmentVariable("BENCH_SCALE_STANDING") is { Length: > 0 } s
            ? int.Parse(s, CultureInfo.InvariantCulture)
            : settings.Quick ? 0 : 100_000;
        if (standing > 0)
        {
            try
            {
                points.Add(await RunStandingAsync(standing, settings.Quick ? 20 : 60, childStart, cancellationToken));
                notes.AddRange(points[^1].Notes);
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or Dtask.Consul.Errors.ConsulException or HttpRequestException or TimeoutException)
            {
                // Where the standing point breaks is itself the finding: said, and the curve above kept.
                Console.Error.WriteLine($"  standing {standing}: failed: {e.Message}");
                notes.Add($"standing {standing}: did not complete on this machine: {e.GetType().Name}: {e.Message}");
            }
        }

        return new ScenarioResult(Name, clock.Elapsed.TotalSeconds, [.. points.SelectMany(p => p.Figures)], [.. points.SelectMany(p => p.Goals)], notes, plots);
    }

    /// <summary>
    /// <paramref name="count"/> tasks that do not fire in the window (a yearly schedule): the reconcile into KV, the KV
    /// size, the executors' start → READY with all of them loaded, then <paramref name="seconds"/> s of standing CPU and
    /// memory of the executors and the agent. Beside it, what firing them once a minute would take in child starts alone.
    /// </summary>
    private async Task<ScenarioResult> RunStandingAsync(int count, int seconds, ChildStartCost childStart, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var setup = string.Create(CultureInfo.InvariantCulture, $"3 executors, {count} tasks loaded (yearly schedule: none fires), {seconds} s");
        Console.Error.WriteLine($"  dtask: {setup}");
        await using var consul = await ConsulUnderTest.StartAsync(cancellationToken);
        var (load, log, executors) = await StartFleetAsync(consul, count, "0 0 0 1 1 *", cancellationToken);
        try
        {
            var ready = await Task.WhenAll(executors.Select(e => e.WaitReadyAsync(TimeSpan.FromMinutes(10), cancellationToken)));
            var pids = executors.Select(e => e.ProcessId).OfType<int>().ToList();
            var windowStart = SlotClock.CurrentSecond + 10;
            var samples = await WindowSampler.RunAsync(consul.Metrics, [.. pids, consul.Agent.ProcessId], windowStart, windowStart + seconds, cancellationToken, SampleStep);
            var window = samples[^1].Counters.Since(samples[0].Counters);
            var span = (double)(samples[^1].Second - samples[0].Second);
            var executorCores = FireBench.Cores(samples, pids);
            var consulCores = FireBench.Cores(samples, [consul.Agent.ProcessId]);
            var executorRss = pids.Select(p => PeakMiB(samples, p)).ToList();
            var consulRss = PeakMiB(samples, consul.Agent.ProcessId);
            var due = count / 60.0;
            var (keys, bytes) = await KvSizeAsync(consul, count, cancellationToken);
            var figures = new List<Figure>
            {
                new(Name, "reconcile of the tasks into KV", "dtask", setup, "s", Value: Math.Round(load.Elapsed.TotalSeconds, 2)),
                new(Name, "KV size: keys under the prefix", "dtask", setup, "keys", Value: keys),
                new(Name, "KV size: bytes of values under the prefix", "dtask", setup, "MiB", Value: Math.Round(bytes / 1048576.0, 1)),
                new(Name, "executor start → READY with all tasks loaded", "dtask", setup, "s", Median: Math.Round(ready.Select(r => r.TotalSeconds).Order().ElementAt(1), 2), Value: Math.Round(ready.Max(r => r.TotalSeconds), 2)),
                new(Name, "executor CPU, all 3 executors, standing (mean)", "dtask", setup, "cores", Value: FireFigures.Round(executorCores)),
                new(Name, "executor memory: RSS (median and largest of the 3)", "dtask", setup, "MiB", Median: Math.Round(executorRss.Order().ElementAt(executorRss.Count / 2), 1), Value: Math.Round(executorRss.Max(), 1)),
                new(Name, "Consul agent CPU, standing (mean)", "dtask", setup, "cores", Value: FireFigures.Round(consulCores)),
                new(Name, "Consul agent memory (largest RSS)", "dtask", setup, "MiB", Value: Math.Round(consulRss, 1)),
                new(Name, "Consul HTTP requests per second, standing", "dtask", setup, "requests/s", Value: FireFigures.Round(window.HttpRequests / span)),
                new(Name, "Consul writes per second, standing (Raft applies)", "dtask", setup, "writes/s", Value: FireFigures.Round(window.RaftApplies / span)),
                new(Name, "machine baseline: CPU of one child start × fires due per second if each fired once a minute", "dtask", setup, "cores", Value: FireFigures.Round(childStart.CoresAt(due))),
            };
            var notes = new List<string>
            {
                string.Create(CultureInfo.InvariantCulture, $"standing {count}: reconciled in {load.Elapsed.TotalSeconds:0.0} s; {keys} keys, {bytes / 1048576.0:0.0} MiB of values in KV; executors READY in {ready.Max(r => r.TotalSeconds):0.0} s; standing executors {executorCores:0.000} cores and up to {executorRss.Max():0} MiB each, Consul {consulCores:0.000} cores and {consulRss:0} MiB; {window.HttpRequests / span:0.0} HTTP requests/s, {window.RaftApplies / span:0.00} writes/s; executors logged {log.Warnings} warnings/errors{(log.Problems.Count > 0 ? ", first: " + log.Problems[0] : "")}."),
                string.Create(CultureInfo.InvariantCulture, $"standing {count}: firing each once a minute would be {due:0} child starts a second; at this machine's price of a child start ({childStart.Describe()}) the children alone would need {childStart.CoresAt(due):0.0} cores."),
            };
            return new ScenarioResult(Name, clock.Elapsed.TotalSeconds, figures, [], notes, []);
        }
        finally
        {
            await Task.WhenAll(executors.Select(e => e.DisposeAsync().AsTask()));
        }
    }

    /// <summary>Loads <paramref name="count"/> tasks running <c>/bin/true</c> on <paramref name="schedule"/>, then starts the 3 executors.</summary>
    private async Task<(ReconcileRun Load, ExecutorLog Log, List<ExecutorProcess> Executors)> StartFleetAsync(ConsulUnderTest consul, int count, string schedule,
        CancellationToken cancellationToken)
    {
        using var loader = new TaskLoader(consul.Client, ConsulUnderTest.Layout);
        var load = await loader.LoadAsync(BenchTask.Many(count, name => new BenchTask(name, schedule, null, ["/bin/true"], History: 5)), cancellationToken);
        var log = new ExecutorLog();
        List<ExecutorProcess> executors = [.. Enumerable.Range(1, 3)
            .Select(i => ExecutorProcess.Start(settings.DtaskDll, $"node-{i:00}", ConsulUnderTest.Prefix, consul.Agent.HostPort, log))];
        return (load, log, executors);
    }

    /// <summary>The largest RSS of <paramref name="pid"/> among <paramref name="samples"/>, in MiB.</summary>
    private static double PeakMiB(IReadOnlyList<WindowSample> samples, int pid) =>
        samples.Max(s => s.Usage.GetValueOrDefault(pid)?.RssBytes ?? 0) / 1048576.0;

    /// <summary>Keys and bytes of values under the bench prefix, listed a folder and a hundred tasks at a time.</summary>
    private static async Task<(long Keys, long Bytes)> KvSizeAsync(ConsulUnderTest consul, int count, CancellationToken cancellationToken)
    {
        long keys = 0, bytes = 0;
        var layout = ConsulUnderTest.Layout;
        foreach (var folder in new[] { layout.TasksPrefix, layout.StatePrefix, layout.ControlPrefix })
        {
            for (var hundred = 0; hundred * 100 < count; hundred++)
            {
                var prefix = string.Create(CultureInfo.InvariantCulture, $"{folder}{BenchTask.Namespace}/t-{hundred:000}");
                foreach (var pair in (await consul.Client.Kv.ListAsync(prefix, cancellationToken: cancellationToken)).Value)
                {
                    keys++;
                    bytes += pair.Key.Length + pair.Value.Length;
                }
            }
        }

        foreach (var pair in (await consul.Client.Kv.ListAsync(layout.NodesPrefix, cancellationToken: cancellationToken)).Value)
        {
            keys++;
            bytes += pair.Key.Length + pair.Value.Length;
        }

        return (keys, bytes);
    }

    /// <summary>One point of the curve.</summary>
    private sealed record ScalePoint(int Tasks, long Missed, double ExecutorCores, double ConsulCores, double ExecutorMiB, double ConsulMiB, double DelayP99Ms);

    /// <summary>One size: <paramref name="count"/> tasks for <paramref name="minutes"/> minutes.</summary>
    private async Task<(ScenarioResult Result, ScalePoint Point)> RunPointAsync(int count, int minutes, ChildStartCost childStart, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var setup = string.Create(CultureInfo.InvariantCulture, $"3 executors, {count} tasks every minute (H * * * * *), {minutes * 60} s");
        Console.Error.WriteLine($"  dtask: {setup}");
        await using var consul = await ConsulUnderTest.StartAsync(cancellationToken);
        var (load, log, executors) = await StartFleetAsync(consul, count, "H * * * * *", cancellationToken);
        try
        {
            var readyTask = Task.WhenAll(executors.Select(e => e.WaitReadyAsync(TimeSpan.FromMinutes(5), cancellationToken)));
            var peakConnections = await PeakConnectionsAsync(consul.Agent.Address.Port, readyTask, TimeSpan.FromSeconds(30), cancellationToken);
            var ready = await readyTask;
            var pids = executors.Select(e => e.ProcessId).OfType<int>().ToList();
            var windowStart = SlotClock.CurrentSecond + 10;
            var windowEnd = windowStart + minutes * 60;
            var clear = ClearAtAsync(log, windowStart, cancellationToken);
            var samples = await WindowSampler.RunAsync(consul.Metrics, [.. pids, consul.Agent.ProcessId], windowStart, windowEnd, cancellationToken, SampleStep);
            await clear;
            var delays = log.FireDelaysMs;
            await SlotClock.UntilAsync(windowEnd + 10, cancellationToken);
            var history = await HistoryAsync(consul, count, windowStart, windowEnd, cancellationToken);
            var expected = (long)count * minutes;
            var succeeded = history.Count(r => r.State == RunState.Succeeded);
            var missed = expected - succeeded;
            var byState = history.Where(r => r.State != RunState.Succeeded).GroupBy(r => $"{r.State}: {r.Reason}").Select(g => $"{g.Key} × {g.Count()}");

            var intervals = WindowSampler.Intervals(samples);
            var executorCores = FireBench.Cores(samples, pids);
            var consulCores = FireBench.Cores(samples, [consul.Agent.ProcessId]);
            var seconds = (double)(samples[^1].Second - samples[0].Second);
            var window = samples[^1].Counters.Since(samples[0].Counters);
            var executorRss = pids.Select(p => PeakMiB(samples, p)).ToList();
            var consulRss = PeakMiB(samples, consul.Agent.ProcessId);
            var delay = Distribution.Of(delays);
            var perExecutorCores = intervals.SelectMany(i => i.Cores.Where(c => c.Key != consul.Agent.ProcessId).Select(c => c.Value));
            var childCores = samples[^1].Usage.Where(u => pids.Contains(u.Key)).Sum(u => u.Value.ChildCpuSeconds - samples[0].Usage.GetValueOrDefault(u.Key, u.Value).ChildCpuSeconds) / seconds;
            var due = count / 60.0;
            var childrenNeed = childStart.CoresAt(due);
            var figures = new List<Figure>
            {
                new(Name, "missed slots (no succeeded record)", "dtask", setup, "slots", Value: missed, Samples: expected),
                Figure.From(Name, FireFigures.ExecutorDelay, "dtask", setup, "ms", delay),
                Figure.From(Name, "executor CPU: each executor per 5 s interval (value: mean)", "dtask", setup, "cores", Distribution.Of(perExecutorCores), FireFigures.Round(executorCores / pids.Count)),
                new(Name, "executor CPU, all 3 executors (mean)", "dtask", setup, "cores", Value: FireFigures.Round(executorCores)),
                new(Name, "executor memory: peak RSS (median and largest of the 3)", "dtask", setup, "MiB", Median: Math.Round(executorRss.Order().ElementAt(executorRss.Count / 2), 1), Value: Math.Round(executorRss.Max(), 1)),
                new(Name, "Consul agent CPU (mean)", "dtask", setup, "cores", Value: FireFigures.Round(consulCores)),
                new(Name, "Consul agent memory (largest RSS)", "dtask", setup, "MiB", Value: Math.Round(consulRss, 1)),
                new(Name, "fires per second", "dtask", setup, "fires/s", Value: FireFigures.Round(history.Count / seconds)),
                new(Name, "Consul writes per second (Raft applies)", "dtask", setup, "writes/s", Value: FireFigures.Round(window.RaftApplies / seconds)),
                new(Name, "Consul HTTP requests per second", "dtask", setup, "requests/s", Value: FireFigures.Round(window.HttpRequests / seconds)),
                new(Name, "executor start → READY with all tasks loaded", "dtask", setup, "s", Median: Math.Round(ready.Select(r => r.TotalSeconds).Order().ElementAt(1), 2), Value: Math.Round(ready.Max(r => r.TotalSeconds), 2)),
                new(Name, "reconcile of the tasks into KV", "dtask", setup, "s", Value: Math.Round(load.Elapsed.TotalSeconds, 2)),
                new(Name, "peak HTTP connections to the agent, first 30 s after start (3 executors)", "dtask", setup, "connections", Value: peakConnections),
                new(Name, "children's CPU (/bin/true, waited for by the executors)", "dtask", setup, "cores", Value: FireFigures.Round(childCores)),
                new(Name, "machine baseline: CPU of one child start (/bin/true as the executor starts it, serial, quiet machine) × fires due per second", "dtask", setup, "cores",
                    Value: FireFigures.Round(childrenNeed)),
            };
            var cores = Environment.ProcessorCount;
            var busy = executorCores + consulCores;
            var goals = new List<GoalCheck>
            {
                new($"0 missed slots with {count} one-minute tasks on 3 executors and one agent ({cores} cores)",
                    $"{missed} of {expected} slots missed; {(delay is null ? "nothing fired" : $"fire delay p99 {delay.P99:0} ms")}; executors {executorCores:0.00} cores, Consul {consulCores:0.00} cores",
                    missed == 0,
                    missed == 0 ? null : string.Create(CultureInfo.InvariantCulture,
                        $"the children alone need {childrenNeed:0.00} of {cores} cores at this machine's price of a child start ({childStart.CpuMsPerStart:0.00} ms of CPU, measured before the run) for {due:0} fires due a second; up to {peakConnections} HTTP connections to the agent while the executors started; {history.Count / seconds:0.0} fires/s, each a process spawn and {window.RaftApplies / Math.Max(1, history.Count):0.0} Raft writes; executors + Consul used {busy:0.00} of {cores} cores; records not succeeded: {string.Join(", ", byState.Take(5).DefaultIfEmpty("none written"))}; executors logged {log.Warnings} warnings, first: {(log.Problems.Count > 0 ? log.Problems[0] : "none")}")),
            };
            var notes = new List<string>
            {
                $"scale {count}: {history.Count} history records in the window; {succeeded} succeeded; others: {string.Join(", ", byState.DefaultIfEmpty("none"))}.",
                $"scale {count}: window totals {window.RaftApplies:0} Raft applies ({window.TxnApplies:0} txn), {window.HttpRequests:0} HTTP requests ({window.ConsistentReads:0} consistent reads); busiest endpoints: {string.Join(", ", window.ByEndpoint.OrderByDescending(p => p.Value).Take(4).Select(p => $"{p.Key} {p.Value:0}"))}.",
                $"scale {count}: the agent runs with limits.http_max_conns_per_client = {MeasuredAgent.HttpConnectionLimit} because every client here connects from 127.0.0.1; Consul's default is 200 per client address, and the 3 executors held up to {peakConnections} connections at once during their first 30 s.",
                $"scale {count}: executors logged {log.Warnings} warnings/errors{(log.Problems.Count > 0 ? ", first: " + string.Join(" | ", log.Problems.Take(3)) : "")}.",
                $"scale {count}: children's CPU (/bin/true, counted to the executors' waited-for children) {childCores:0.00} cores; at the machine's price of a child start measured before the run ({childStart.Describe()}) the {due:0} fires due a second need {childrenNeed:0.00} cores of children.",
            };
            var start = samples[0].Second;
            var plot = new PlotSpec($"scale-cpu-{count}.png", $"CPU during the scale run ({count} tasks, 3 executors)", "seconds into the window", "cores",
            [
                new PlotSeries("executors (sum)", [.. intervals.Select(i => (double)(i.Second - start))], [.. intervals.Select(i => i.Cores.Where(c => c.Key != consul.Agent.ProcessId).Sum(c => c.Value))]),
                new PlotSeries("Consul agent", [.. intervals.Select(i => (double)(i.Second - start))], [.. intervals.Select(i => i.Cores.GetValueOrDefault(consul.Agent.ProcessId))]),
            ]);
            var point = new ScalePoint(count, missed, executorCores, consulCores, executorRss.Max(), consulRss, delay?.P99 ?? double.NaN);
            return (new ScenarioResult(Name, clock.Elapsed.TotalSeconds, figures, goals, notes, [plot]), point);
        }
        finally
        {
            await Task.WhenAll(executors.Select(e => e.DisposeAsync().AsTask()));
        }
    }

    /// <summary>The most connections to <paramref name="port"/> seen every 50 ms for <paramref name="span"/> (at least until <paramref name="until"/> completes).</summary>
    private static async Task<int> PeakConnectionsAsync(int port, Task until, TimeSpan span, CancellationToken cancellationToken)
    {
        var peak = 0;
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 20_000 && (clock.Elapsed < span || !until.IsCompleted); i++)
        {
            peak = Math.Max(peak, TcpConnections.To(port));
            if (until.IsFaulted)
            {
                break;
            }

            await Task.Delay(50, cancellationToken);
        }

        return peak;
    }

    private static async Task ClearAtAsync(ExecutorLog log, double at, CancellationToken cancellationToken)
    {
        await SlotClock.UntilAsync(at, cancellationToken);
        log.Clear();
    }

    /// <summary>The history records of slots in [<paramref name="from"/>, <paramref name="to"/>), read a hundred tasks at a time.</summary>
    private static async Task<IReadOnlyList<RunRecord>> HistoryAsync(ConsulUnderTest consul, int count, long from, long to, CancellationToken cancellationToken)
    {
        var records = new List<RunRecord>();
        var folder = ConsulUnderTest.Layout.StatePrefix + BenchTask.Namespace + "/";
        for (var hundred = 0; hundred * 100 < count; hundred++)
        {
            var prefix = string.Create(CultureInfo.InvariantCulture, $"{folder}t-{hundred:000}");
            var pairs = (await consul.Client.Kv.ListAsync(prefix, cancellationToken: cancellationToken)).Value;
            foreach (var pair in pairs)
            {
                var slash = pair.Key.LastIndexOf('/');
                if (slash < 0 || !pair.Key.AsSpan(0, slash).EndsWith("/history", StringComparison.Ordinal)
                    || !long.TryParse(pair.Key.AsSpan(slash + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out var slot) || slot < from || slot >= to)
                {
                    continue;
                }

                if (StateJson.TryDeserialize<RunRecord>(pair.ValueAsString()) is { } record)
                {
                    records.Add(record);
                }
            }
        }

        return records;
    }
}
