using System.Diagnostics;
using System.Globalization;
using Dtask.Bench.Consul;
using Dtask.Bench.Report;
using Dtask.Bench.Workload;

namespace Dtask.Bench.Scenarios;

/// <summary>
/// Reconcile: 1,000, 10,000 and 100,000 manifests from a directory into KV by the operator's directory source, then a resync
/// of the unchanged directory (which must write nothing). Writes counted on both sides: the operator's client and the
/// agent's Raft applies.
/// </summary>
internal sealed class ReconcileScenario(BenchSettings settings) : IScenario
{
    /// <inheritdoc />
    public string Name => "reconcile";

    /// <inheritdoc />
    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var figures = new List<Figure>();
        var goals = new List<GoalCheck>();
        var notes = new List<string>();
        int[] sizes = settings.Quick ? [1000] : [1000, 10_000, 100_000];
        foreach (var count in sizes)
        {
            Console.Error.WriteLine($"  dtask: reconcile {count} manifests");
            await using var consul = await ConsulUnderTest.StartAsync(cancellationToken);
            using var loader = new TaskLoader(consul.Client, ConsulUnderTest.Layout);
            var tasks = BenchTask.Many(count, name => new BenchTask(name, null, string.Create(CultureInfo.InvariantCulture, $"{1 + int.Parse(name.AsSpan(2), CultureInfo.InvariantCulture) % 7}m"), ["/bin/true"]));
            await loader.WriteAsync(tasks, cancellationToken);
            var setup = string.Create(CultureInfo.InvariantCulture, $"{count} manifests in {(count + 49) / 50} files");
            var before = await consul.Metrics.ReadAsync(cancellationToken);
            var first = await loader.ReconcileAsync(cancellationToken);
            var afterFirst = await consul.Metrics.ReadAsync(cancellationToken);
            var resync = await loader.ReconcileAsync(cancellationToken);
            var afterResync = await consul.Metrics.ReadAsync(cancellationToken);
            var firstAgent = afterFirst.Since(before);
            var resyncAgent = afterResync.Since(afterFirst);
            figures.Add(new Figure(Name, "first reconcile: time", "dtask", setup, "s", Value: Math.Round(first.Elapsed.TotalSeconds, 3)));
            figures.Add(new Figure(Name, "first reconcile: writes sent (transactions of up to 64 operations)", "dtask", setup, "writes", Value: first.Writes));
            figures.Add(new Figure(Name, "first reconcile: Raft applies (agent)", "dtask", setup, "writes", Value: firstAgent.RaftApplies));
            figures.Add(new Figure(Name, "first reconcile: HTTP requests (agent)", "dtask", setup, "requests", Value: firstAgent.HttpRequests));
            figures.Add(new Figure(Name, "resync, nothing changed: time", "dtask", setup, "s", Value: Math.Round(resync.Elapsed.TotalSeconds, 3)));
            figures.Add(new Figure(Name, "resync, nothing changed: writes sent", "dtask", setup, "writes", Value: resync.Writes));
            figures.Add(new Figure(Name, "resync, nothing changed: Raft applies (agent)", "dtask", setup, "writes", Value: resyncAgent.RaftApplies));
            figures.Add(new Figure(Name, "resync, nothing changed: HTTP requests (agent)", "dtask", setup, "requests", Value: resyncAgent.HttpRequests));
            goals.Add(new GoalCheck($"a resync of {count} unchanged manifests writes nothing", $"{resync.Writes} client writes, {resyncAgent.RaftApplies:0} Raft applies",
                resync.Writes == 0 && resyncAgent.RaftApplies == 0,
                resync.Writes == 0 && resyncAgent.RaftApplies == 0 ? null : $"{resyncAgent.RaftApplies:0} Raft applies on the agent during the resync (the agent's own background is included)"));
            notes.Add($"reconcile {count}: first created {first.Created}, {first.Writes} transactions ({firstAgent.TxnApplies:0} txn applies on the agent, up to 64 operations each); resync left {resync.Unchanged} unchanged with {resync.Requests} request(s).");
        }

        return new ScenarioResult(Name, clock.Elapsed.TotalSeconds, figures, goals, notes, []);
    }
}
