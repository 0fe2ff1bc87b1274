using System.Globalization;
using Dtask.Bench.Baselines;
using Dtask.Bench.Consul;
using Dtask.Bench.Executors;
using Dtask.Bench.Processes;
using Dtask.Bench.Report;
using Dtask.Bench.Workload;
using Dtask.Consul;

namespace Dtask.Bench.Scenarios;

/// <summary>The systems a fire benchmark can run.</summary>
internal enum FireSystem
{
    /// <summary>dtask executors, each its own <c>dtask executor</c> process.</summary>
    DtaskProcesses,

    /// <summary>dtask executors hosted inside the benchmark process.</summary>
    DtaskInProcess,

    /// <summary>cron + <c>consul lock</c> on every node.</summary>
    ConsulLock,

    /// <summary>The original project's period check by CAS on every node.</summary>
    CasCheck,
}

/// <summary>One fire benchmark: <paramref name="Tasks"/> tasks every second on <paramref name="Nodes"/> nodes for <paramref name="Seconds"/> seconds.</summary>
/// <param name="System">What runs the tasks.</param>
/// <param name="Nodes">Executors or baseline nodes.</param>
/// <param name="Tasks">Tasks, each every 1 s.</param>
/// <param name="Seconds">Measured slots (one a second).</param>
/// <param name="IdleSeconds">For dtask: a window with the tasks suspended first, to measure the background cost.</param>
internal sealed record FireSetup(FireSystem System, int Nodes, int Tasks, int Seconds, int IdleSeconds)
{
    /// <summary>The system's name in the report.</summary>
    public string SystemName => System switch
    {
        FireSystem.ConsulLock => "consul-lock",
        FireSystem.CasCheck => "cas-check",
        _ => "dtask",
    };

    /// <summary>The setup in words.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Nodes} {(System is FireSystem.DtaskProcesses or FireSystem.DtaskInProcess ? "executors" : "nodes")}{(System == FireSystem.DtaskInProcess ? " (in-process)" : "")}, {Tasks} tasks every 1s, {Seconds} s");
}

/// <summary>Background cost of idle executors (tasks suspended): per second, over the whole fleet.</summary>
/// <param name="Seconds">Length of the idle window.</param>
/// <param name="RaftPerSecond">Raft applies a second.</param>
/// <param name="HttpPerSecond">HTTP requests a second.</param>
/// <param name="RenewalsPerSecond">Session renewals a second.</param>
internal sealed record Background(double Seconds, double RaftPerSecond, double HttpPerSecond, double RenewalsPerSecond)
{
    /// <summary>No background.</summary>
    public static Background None { get; } = new(0, 0, 0, 0);
}

/// <summary>What a fire benchmark measured.</summary>
internal sealed record FireMeasurement(
    FireSetup Setup,
    FireTally Tally,
    IReadOnlyList<double> ExecutorDelaysMs,
    Distribution? WritesPerFire,
    double WritesPerFireOverall,
    Distribution? RequestsPerFire,
    double RequestsPerFireOverall,
    Background Idle,
    double ExecutorCores,
    double ConsulCores,
    long Warnings,
    IReadOnlyList<string> Problems,
    ConsulCounters Window)
{
    /// <summary>In-process dtask only: the fire path's HTTP requests (reads of <c>state/</c>, transactions) per fire,
    /// counted by URL in the agent's request log over the window; NaN otherwise.</summary>
    public double FirePathRequestsPerFire { get; init; } = double.NaN;

    /// <summary>In-process dtask only: of those, the writes (each one Raft apply) per fire; NaN otherwise.</summary>
    public double FirePathWritesPerFire { get; init; } = double.NaN;

    /// <summary>In-process dtask only: the fire path's requests per fire by part (stale reads, consistent reads,
    /// transactions, history listings), as a line; empty otherwise.</summary>
    public string FirePathProfile { get; init; } = "";

    /// <summary>In-process dtask only: each executor's standing requests a second over the window, by kind (sessions,
    /// membership, other watches), counted by URL.</summary>
    public IReadOnlyDictionary<RequestKind, double> StandingPerExecutorSecond { get; init; } = new Dictionary<RequestKind, double>();
}

/// <summary>Runs one <see cref="FireSetup"/> against a fresh agent, witnessed by the children themselves.</summary>
internal sealed class FireBench(BenchSettings settings)
{
    private const int WarmUpSeconds = 4;

    /// <summary>Runs it.</summary>
    public async Task<FireMeasurement> RunAsync(FireSetup setup, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(setup);
        Console.Error.WriteLine($"  {setup.SystemName}: {setup.Describe()}");
        // In-process fleets can be hundreds of executors on this one agent: their fire-path requests are counted by URL.
        var tallied = setup.System == FireSystem.DtaskInProcess;
        await using var consul = await ConsulUnderTest.StartAsync(cancellationToken, tallied);
        using var witness = new Witness();
        using var loader = new TaskLoader(consul.Client, ConsulUnderTest.Layout);
        await using var processes = new OwnedProcesses();
        var log = new ExecutorLog();
        var dtask = setup.System is FireSystem.DtaskProcesses or FireSystem.DtaskInProcess;
        var tasks = BenchTask.Many(setup.Tasks, name => new BenchTask(name, null, "1s", witness.Command, History: 3, Suspended: dtask && setup.IdleSeconds > 0));
        var names = tasks.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var executors = new List<IRunningExecutor>();
        try
        {
            var idle = Background.None;
            List<int> pids = [consul.Agent.ProcessId];
            if (dtask)
            {
                await loader.LoadAsync(tasks, cancellationToken);
                executors.AddRange(await StartExecutorsAsync(setup, consul, log, cancellationToken));
                pids.AddRange(ExecutorPids(setup, executors));
                if (setup.IdleSeconds > 0)
                {
                    idle = await IdleAsync(consul.Metrics, setup.IdleSeconds, cancellationToken);
                    await loader.LoadAsync([.. tasks.Select(t => t with { Suspended = false })], cancellationToken);
                }
            }

            var firstSlot = SlotClock.CurrentSecond + WarmUpSeconds;
            var lastSlot = firstSlot + setup.Seconds - 1;
            var nodes = BaselineNodes(setup, consul, witness, names, processes);
            var baselineRuns = nodes.Select(n => n.RunAsync(firstSlot, lastSlot, cancellationToken)).ToList();
            var clearLog = ClearAtAsync(log, firstSlot - 0.5, cancellationToken);
            var tallyStart = SnapshotAtAsync(consul.Agent.Requests, firstSlot - 0.5, cancellationToken);
            var tallyEnd = SnapshotAtAsync(consul.Agent.Requests, lastSlot + 0.5, cancellationToken);
            var samples = await WindowSampler.RunAsync(consul.Metrics, pids, firstSlot, lastSlot, cancellationToken);
            var delays = log.FireDelaysMs;
            await clearLog;
            var (before, after) = (await tallyStart, await tallyEnd);
            await Task.WhenAll(baselineRuns);
            await SlotClock.UntilAsync(lastSlot + 2.5, cancellationToken);
            await processes.DrainAsync(TimeSpan.FromSeconds(5));

            var lines = witness.Read();
            var tally = FireTally.Of(lines, names, firstSlot, lastSlot);
            var firedBySlot = lines.Where(l => names.Contains(l.Task)).GroupBy(l => l.Slot).ToDictionary(g => g.Key, g => g.Select(l => l.Task).Distinct().Count());
            var intervals = WindowSampler.Intervals(samples);
            var writes = new List<double>();
            var requests = new List<double>();
            foreach (var (second, delta, _) in intervals)
            {
                if (firedBySlot.TryGetValue(second, out var fired) && fired > 0)
                {
                    writes.Add((delta.RaftApplies - idle.RaftPerSecond) / fired);
                    requests.Add((delta.HttpRequests - idle.HttpPerSecond) / fired);
                }
            }

            var window = samples[^1].Counters.Since(samples[0].Counters);
            var seconds = intervals.Count;
            var executorCores = ExecutorCores(setup, samples, consul.Agent.ProcessId);
            var consulCores = Cores(samples, [consul.Agent.ProcessId]);
            var measurement = new FireMeasurement(setup, tally, delays,
                Distribution.Of(writes), tally.Fired == 0 ? double.NaN : (window.RaftApplies - idle.RaftPerSecond * seconds) / tally.Fired,
                Distribution.Of(requests), tally.Fired == 0 ? double.NaN : (window.HttpRequests - idle.HttpPerSecond * seconds) / tally.Fired,
                idle, executorCores, consulCores, log.Warnings, log.Problems, window);
            if (before is { } b && after is { } a && tally.Fired > 0)
            {
                var span = lastSlot - firstSlot + 1;
                measurement = measurement with
                {
                    // The fires of the window's seconds, counted over as many seconds (in a steady state the requests of a
                    // slot that spill past the window's end are those of the slot before it that spilled in).
                    FirePathRequestsPerFire = (double)(a.ByKind[RequestKind.FirePath] - b.ByKind[RequestKind.FirePath]) / (setup.Tasks * span),
                    FirePathWritesPerFire = (double)(a.FirePathWrites - b.FirePathWrites) / (setup.Tasks * span),
                    FirePathProfile = RequestTally.Profile(b.Parts, a.Parts, setup.Tasks * span),
                    StandingPerExecutorSecond = new[] { RequestKind.Sessions, RequestKind.Membership, RequestKind.Other }
                        .ToDictionary(k => k, k => (double)(a.ByKind[k] - b.ByKind[k]) / (setup.Nodes * span)),
                };
            }

            return measurement;
        }
        finally
        {
            await Task.WhenAll(executors.Select(e => e.DisposeAsync().AsTask()));
        }
    }

    /// <summary>The agent's request counts at <paramref name="at"/> (Unix seconds); null without a tally.</summary>
    private static async Task<(IReadOnlyDictionary<RequestKind, long> ByKind, long FirePathWrites, IReadOnlyDictionary<FirePathPart, long> Parts)?> SnapshotAtAsync(RequestTally? requests, double at,
        CancellationToken cancellationToken)
    {
        if (requests is null)
        {
            return null;
        }

        await SlotClock.UntilAsync(at, cancellationToken);
        await Task.Delay(50, cancellationToken); // the agent's log lines of requests finished by then
        return (requests.Snapshot(), requests.FirePathWrites, requests.FirePathParts());
    }

    private static async Task ClearAtAsync(ExecutorLog log, double at, CancellationToken cancellationToken)
    {
        await SlotClock.UntilAsync(at, cancellationToken);
        log.Clear();
    }

    private static async Task<Background> IdleAsync(AgentMetrics metrics, int seconds, CancellationToken cancellationToken)
    {
        // Let the sessions and watches settle, then count a whole window.
        var first = SlotClock.CurrentSecond + 2;
        await SlotClock.UntilAsync(first + 0.5, cancellationToken);
        var start = await metrics.ReadAsync(cancellationToken);
        await SlotClock.UntilAsync(first + seconds + 0.5, cancellationToken);
        var delta = (await metrics.ReadAsync(cancellationToken)).Since(start);
        return new Background(seconds, delta.RaftApplies / seconds, delta.HttpRequests / seconds, delta.SessionRenewals / seconds);
    }

    private async Task<IReadOnlyList<IRunningExecutor>> StartExecutorsAsync(FireSetup setup, ConsulUnderTest consul, ExecutorLog log, CancellationToken cancellationToken)
    {
        var nodes = Enumerable.Range(1, setup.Nodes).Select(i => string.Create(CultureInfo.InvariantCulture, $"node-{i:00}")).ToList();
        if (setup.System == FireSystem.DtaskProcesses)
        {
            var started = nodes.Select(n => ExecutorProcess.Start(settings.DtaskDll, n, ConsulUnderTest.Prefix, consul.Agent.HostPort, log)).ToList();
            try
            {
                await Task.WhenAll(started.Select(e => e.WaitReadyAsync(TimeSpan.FromSeconds(120), cancellationToken)));
            }
            catch
            {
                await Task.WhenAll(started.Select(e => e.DisposeAsync().AsTask()));
                throw;
            }

            return started;
        }

        var inProcess = new List<IRunningExecutor>();
        try
        {
            // Sixteen at a time: each start waits mostly on Consul (its session, its registration, its first watch), so
            // a fleet of hundreds starts in minutes instead of one after another.
            foreach (var group in nodes.Chunk(16))
            {
                var starting = group.Select(node => InProcessExecutor.StartAsync(node, ConsulUnderTest.Prefix, consul.Agent.ClientOptions, log, cancellationToken)).ToList();
                try
                {
                    await Task.WhenAll(starting);
                }
                finally
                {
                    inProcess.AddRange(starting.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result));
                }
            }
        }
        catch
        {
            await Task.WhenAll(inProcess.Select(e => e.DisposeAsync().AsTask()));
            throw;
        }

        return inProcess;
    }

    private static IEnumerable<int> ExecutorPids(FireSetup setup, IReadOnlyList<IRunningExecutor> executors) =>
        setup.System == FireSystem.DtaskInProcess ? [Environment.ProcessId] : executors.Select(e => e.ProcessId).OfType<int>();

    private static IReadOnlyList<IBaselineNode> BaselineNodes(FireSetup setup, ConsulUnderTest consul, Witness witness, IReadOnlyCollection<string> names, OwnedProcesses processes)
    {
        var nodes = Enumerable.Range(1, setup.Nodes).Select(i => string.Create(CultureInfo.InvariantCulture, $"node-{i:00}"));
        IReadOnlyList<string> tasks = [.. names.Order(StringComparer.Ordinal)];
        return setup.System switch
        {
            FireSystem.ConsulLock => [.. nodes.Select(n => new ConsulLockNode(n, consul.Agent.Binary, consul.Agent.HostPort, ConsulUnderTest.Prefix, tasks, witness.Command, processes))],
            FireSystem.CasCheck => [.. nodes.Select(n => new PeriodCheckNode(n, consul.Client, ConsulUnderTest.Prefix, tasks, witness.Command, processes))],
            _ => [],
        };
    }

    private static double ExecutorCores(FireSetup setup, IReadOnlyList<WindowSample> samples, int consulPid)
    {
        var pids = samples[0].Usage.Keys.Where(p => p != consulPid).ToList();
        return setup.System is FireSystem.DtaskProcesses or FireSystem.DtaskInProcess ? Cores(samples, pids) : double.NaN;
    }

    /// <summary>Average cores used by <paramref name="pids"/> over the sampled window.</summary>
    public static double Cores(IReadOnlyList<WindowSample> samples, IEnumerable<int> pids)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var total = 0.0;
        foreach (var pid in pids)
        {
            if (samples[0].Usage.TryGetValue(pid, out var first) && samples[^1].Usage.TryGetValue(pid, out var last))
            {
                total += last.CoresSince(first);
            }
        }

        return total;
    }
}
