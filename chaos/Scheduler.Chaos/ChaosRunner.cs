using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Dtask.Chaos.Checking;
using Dtask.Chaos.Evidence;
using Dtask.Chaos.Faults;
using Dtask.Chaos.Fleet;
using Dtask.Chaos.Hosts;
using Dtask.Chaos.Workload;
using Dtask.Consul.Errors;
using Dtask.Core.State;
using Dtask.Testing;

namespace Dtask.Chaos;

/// <summary>
/// Runs one chaos experiment end to end: a Consul cluster, the executor fleet, the workload, the fault plan; then
/// stops the executors, collects the KV records (before the cluster stops) and the witness log, and checks the
/// invariants. Everything it starts is stopped when it returns, also on failure or cancellation.
/// </summary>
public sealed class ChaosRunner(ChaosOptions options, TextWriter output, TimeProvider time)
{
    /// <summary>The time given to executors to see the tasks before slots are judged.</summary>
    public static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(3);

    /// <summary>Between the end of the fault phase and stopping the executors, so the last judged slots are recorded.</summary>
    public static readonly TimeSpan Settle = TimeSpan.FromSeconds(4);

    /// <summary>How long before the end of the fault phase the manual trigger stream stops.</summary>
    public static readonly TimeSpan TriggerQuiet = TimeSpan.FromSeconds(20);

    /// <summary>The KV prefix of the run.</summary>
    public const string Prefix = "dtask/";

    private static readonly TimeSpan ShutdownGrace = TimeSpan.FromSeconds(5);

    /// <summary>Runs the experiment and returns its result (the report says whether the invariants held).</summary>
    public async Task<ChaosResult> RunAsync(CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var wall = Stopwatch.StartNew();
        var commit = ChaosPublisher.Commit(RepositoryRoot.Find(AppContext.BaseDirectory));
        var startedAt = time.GetUtcNow();
        var plan = FaultPlan.For(options.Duration, options.SessionTtl, options.Seed, options.OnlyFaults);
        var tools = ChaosTools.Find();
        NodeNetwork.RemoveStale(tools);
        ServerNetwork.RemoveStale(tools);
        var work = Directory.CreateTempSubdirectory("dtask-chaos-");
        var layout = new KvLayout(Prefix);
        var workload = new ChaosWorkload(options.Tasks ?? ChaosWorkload.FullTasks, work.FullName, layout);
        var passed = false;
        try
        {
            Say($"CHAOS_SEED={options.Seed.ToString(CultureInfo.InvariantCulture)} (replay: make chaos CHAOS_SEED={options.Seed.ToString(CultureInfo.InvariantCulture)} CHAOS_DURATION={options.Duration.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)})");
            Say($"work folder {work.FullName} (witness-net<inode>.log per host, node-N.log)");
            using var servers = ServerNetwork.Create(tools, options.Servers);
            Say($"starting {options.Servers} Consul servers, each in its own network namespace: {servers}");
            await using var cluster = await ConsulCluster.StartAsync(options.Servers, servers.Placement, TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
            var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            Say($"cluster up: {string.Join(", ", cluster.Servers.Select(s => $"{s.Name} {s.Address}"))}; leader {leader.Name}");

            var launch = new ExecutorLaunch(options.DotnetHost, options.DtaskDll, Prefix, options.SessionTtl, ShutdownGrace, TimeSpan.FromSeconds(1));
            var clocks = new Dictionary<string, TimeSpan>(plan.Clocks, StringComparer.Ordinal);
            if (plan.JumpNode is { } jumper)
            {
                clocks.TryAdd(jumper, TimeSpan.Zero);
            }

            using var fleet = ExecutorFleet.Create(options.Executors, cluster, launch, work.FullName, tools, clocks);
            var hosts = fleet.WitnessHosts();
            (IReadOnlyList<WitnessRun> Runs, IReadOnlyList<string> Unreadable) Witness() => WitnessLog.ReadFolder(workload.WitnessFolder, hosts);
            try
            {
                Say($"starting {options.Executors} executors (session TTL {options.SessionTtl.TotalSeconds:0} s): "
                    + string.Join(", ", fleet.Nodes.Select(n => $"{n.Name} ({n.Host?.Network.NodeAddress}{(n.Host?.Clock is { } c ? $", clock {c.Offset.TotalSeconds:+0;-0;0} s" : "")})->{cluster.Servers.First(s => s.Address == n.Consul).Name}")));
                if (options.TasksBeforeExecutors)
                {
                    using var client = leader.CreateClient();
                    await workload.ApplyAsync(client, cancellationToken).ConfigureAwait(false);
                }

                await fleet.StartAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
                if (!options.TasksBeforeExecutors)
                {
                    foreach (var node in fleet.Nodes.Where(n => n.Host?.Clock is { } c && c.Offset.Duration() > TimeSpan.FromSeconds(2)))
                    {
                        var held = await node.WaitForSkewGuardAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
                        Say(held ? $"{node.Name}: its skew guard holds" : $"{node.Name}: its skew guard did not say it holds within 30 s");
                    }

                    using var client = leader.CreateClient();
                    await workload.ApplyAsync(client, cancellationToken).ConfigureAwait(false);
                }

                var phaseStart = time.GetUtcNow();
                Say($"applied {workload.Tasks.Count} tasks: {string.Join(", ", workload.Tasks.Select(t => $"{t.Name} (every {t.PeriodSeconds} s, works {t.Work.TotalSeconds:0.#} s, {t.Policy}{(t.Placement == Dtask.Core.Model.Placement.Any ? "" : ", " + t.Placement)})"))}");
                Say($"fault phase: {options.Duration.TotalSeconds:0} s, {plan.Faults.Count} faults");

                // The manual trigger stream stops TriggerQuiet before the end, so its last requests can run before the evidence is taken.
                var stream = new ManualTriggers(cluster, layout, workload.Tasks, options.Seed, time);
                using var streamStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var streaming = stream.RunAsync(phaseStart + options.Duration - TriggerQuiet, streamStop.Token);
                var injector = new FaultInjector(cluster, fleet, layout, ChaosWorkload.Namespace, output, time, () => Witness().Runs, options.Seed, tools, servers);
                var faults = await injector.RunAsync(plan, phaseStart, options.Duration, cancellationToken).ConfigureAwait(false);
                var phaseEnd = phaseStart + options.Duration;
                await streamStop.CancelAsync().ConfigureAwait(false);
                await streaming.ConfigureAwait(false);
                await DelayUntilAsync(phaseEnd + Settle, cancellationToken).ConfigureAwait(false);
                var window = new CheckWindow(WindowStart(phaseStart, plan, workload, Witness().Runs), phaseEnd - TimeSpan.FromSeconds(2));

                Say("fault phase over; stopping the executors (SIGTERM)");
                await fleet.StopAsync(ShutdownGrace + TimeSpan.FromSeconds(15)).ConfigureAwait(false);
                var kv = await ReadKvAsync(cluster, layout, cancellationToken).ConfigureAwait(false);
                var leftovers = LeftoverChildren.Kill(Witness().Runs);
                var evidenceAt = time.GetUtcNow();
                if (leftovers > 0)
                {
                    Say($"killed {leftovers} orphaned child(ren) still running");
                }

                var (runs, unreadable) = Witness();
                Say($"evidence: {runs.Count} witnessed runs, {kv.History.Values.Sum(h => h.Count)} history records");
                var report = InvariantChecker.Check(new CheckInput(workload.Tasks, window, runs, kv, faults, evidenceAt, injector.ChildExits, options.SessionTtl, launch.TerminationGrace,
                    workload.Tasks.Any(t => t.Triggered) ? stream.Sent : null, [.. fleet.Nodes.Select(n => n.Name)]));
                if (unreadable.Count > 0 || kv.Unreadable.Count > 0)
                {
                    report = report with { Notes = [.. report.Notes, $"{unreadable.Count} unreadable witness line(s), {kv.Unreadable.Count} unreadable KV value(s)"] };
                }

                ReportPrinter.Print(report, output);
                passed = report.Passed;
                var result = new ChaosResult(startedAt, options.Duration.TotalSeconds, Math.Round(wall.Elapsed.TotalSeconds, 1), options.Servers, options.Executors,
                    options.SessionTtl.TotalSeconds, await MachineAsync(cancellationToken).ConfigureAwait(false), passed, report, commit, options.Seed, phaseStart,
                    injector.ChildExits);
                if (options.ReportPath is { } path)
                {
                    await result.WriteAsync(path, cancellationToken).ConfigureAwait(false);
                    Say($"wrote {path}");
                    if (options.BenchmarksPath is { } defectMarkdown && options.Defect is { } defect)
                    {
                        ChaosPublisher.WriteDefectMarkdown(result, defect, defectMarkdown, Path.GetRelativePath(Path.GetDirectoryName(Path.GetFullPath(defectMarkdown))!, Path.GetFullPath(path)));
                        Say($"wrote the defect section of {defectMarkdown}");
                    }
                    else if (options.BenchmarksPath is { } markdown)
                    {
                        var picture = Path.ChangeExtension(path, null) + "-timeline.png";
                        ChaosPublisher.WriteTimeline(result, runs, [.. fleet.Nodes.Select(n => n.Name)], picture);
                        var relative = Path.GetRelativePath(Path.GetDirectoryName(Path.GetFullPath(markdown))!, Path.GetFullPath(picture));
                        var json = Path.GetRelativePath(Path.GetDirectoryName(Path.GetFullPath(markdown))!, Path.GetFullPath(path));
                        ChaosPublisher.WriteMarkdown(result, markdown, json, relative);
                        Say($"wrote {picture} and the chaos section of {markdown}");
                    }
                }

                Say($"wall time {wall.Elapsed.TotalSeconds:0.0} s");
                return result;
            }
            finally
            {
                fleet.Dispose();
                LeftoverChildren.Kill(Witness().Runs);
            }
        }
        finally
        {
            if (passed && !options.KeepWorkFolder)
            {
                TryDelete(work);
            }
            else
            {
                Say($"evidence kept in {work.FullName}");
            }
        }
    }

    private async Task<KvEvidence> ReadKvAsync(ConsulCluster cluster, KvLayout layout, CancellationToken cancellationToken)
    {
        ConsulException? last = null;
        for (var attempt = 0; attempt < 20; attempt++)
        {
            foreach (var server in cluster.Servers.Where(s => s.IsRunning))
            {
                using var client = server.CreateClient(TimeSpan.FromSeconds(10));
                try
                {
                    return await KvEvidence.ReadAsync(client, layout, ChaosWorkload.Namespace, cancellationToken).ConfigureAwait(false);
                }
                catch (ConsulException e)
                {
                    last = e;
                }
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), time, cancellationToken).ConfigureAwait(false);
        }

        throw new InvalidOperationException("could not read the run records from any Consul server", last);
    }

    private static async Task<ChaosMachine> MachineAsync(CancellationToken cancellationToken)
    {
        var consul = "unknown";
        try
        {
            var start = new ProcessStartInfo(ConsulBinary.Locate(), "version") { RedirectStandardOutput = true, UseShellExecute = false };
            using var process = Process.Start(start);
            if (process is not null)
            {
                consul = (await process.StandardOutput.ReadLineAsync(cancellationToken).ConfigureAwait(false))?.Trim() ?? consul;
                await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // The version is only informative.
        }

        return new ChaosMachine(RuntimeInformation.OSDescription, Environment.ProcessorCount, RuntimeInformation.FrameworkDescription, consul);
    }

    /// <summary>
    /// The first judged slot: <see cref="WarmUp"/> after the tasks were applied, or later, once every task has a witnessed
    /// run (the executor that ran a task's first slot plans every later one; an earlier slot may come before any executor
    /// saw the task on a loaded machine), but never after the first fault, which the window must cover.
    /// </summary>
    private static DateTimeOffset WindowStart(DateTimeOffset phaseStart, FaultPlan plan, ChaosWorkload workload, IReadOnlyList<WitnessRun> witnessed)
    {
        var earliest = phaseStart + WarmUp;
        var latest = plan.Faults.Count > 0 ? phaseStart + plan.Faults.Min(f => f.At) : earliest;
        var firstRuns = witnessed.Where(r => !r.IsManual).GroupBy(r => r.Task, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Min(r => r.SlotTime), StringComparer.Ordinal);
        if (!workload.Tasks.All(t => firstRuns.ContainsKey(t.Name)))
        {
            return earliest; // A task that never ran is reported (no-runs) over the usual window.
        }

        var seen = firstRuns.Values.Max();
        return seen <= earliest ? earliest : seen < latest ? seen : latest;
    }

    private async Task DelayUntilAsync(DateTimeOffset at, CancellationToken cancellationToken)
    {
        var wait = at - time.GetUtcNow();
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
        }
    }

    private static void TryDelete(DirectoryInfo folder)
    {
        try
        {
            folder.Delete(recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }
    }

    private void Say(string message) => output.WriteLine($"[{time.GetUtcNow():HH:mm:ss.fff}Z] {message}");
}
