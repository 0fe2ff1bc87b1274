using System.Text;
using Dtask.Consul;
using Dtask.Consul.Blocking;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Ledger;
using Microsoft.Extensions.Hosting;
using Serilog;

namespace Dtask.Executor.Daemon;

/// <summary>
/// Watches <c>tasks/</c>, <c>nodes/</c> and <c>control/</c> with blocking queries and keeps <see cref="ClusterView"/>
/// up to date. The first state of all three is loaded in <see cref="StartAsync"/>, so the host reports READY only once
/// the executor knows its tasks; a change then reaches the view as soon as Consul answers the blocking query (well
/// within a second). Failures back off and are logged once until the watch recovers.
/// </summary>
/// <remarks>
/// <para>A blocking query on a prefix with no keys under it waits on the index of the whole KV store, so it returns at
/// every write anywhere (every claim and finish of every executor). <c>control/</c> is empty nearly always; the
/// executor writes the placeholder <c>control/.watch</c> (CAS 0: only when absent, one write per cluster), which no
/// reader takes for a request, so the folder's own index is watched. <c>nodes/</c> holds this executor's registration
/// and <c>tasks/</c> is empty only when there is nothing to run. An answer whose listing did not change
/// (<see cref="ListingChange"/>) is not processed again.</para>
/// </remarks>
public sealed class KvWatchService(IFleetLedger ledger, KvLayout layout, ClusterView view, ClockSkewGuard skew, TimeProvider time, ILogger logger,
    ExecutorOptions? options = null)
    : BackgroundService
{
    private static readonly BlockingQueryOptions WatchOptions = new() { WaitTime = TimeSpan.FromMinutes(5), MinInterval = TimeSpan.FromMilliseconds(50) };
    private readonly TaskSpecReader reader = new(layout, logger, options?.TrustedKeys);
    private BlockingQuery<IReadOnlyList<KvPair>>? tasks;
    private BlockingQuery<IReadOnlyList<KvPair>>? nodes;
    private BlockingQuery<IReadOnlyList<KvPair>>? controls;

    /// <summary>Loads the first state of every watched folder (retrying while Consul cannot be reached), then starts watching.</summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await PlaceControlAnchorAsync(cancellationToken).ConfigureAwait(false);
        tasks = Watch(LedgerFolder.Tasks);
        nodes = Watch(LedgerFolder.Nodes, WatchOptions with { ChangePace = () => NodesWatchPace(view.Nodes.Count) });
        controls = Watch(LedgerFolder.Control);
        await FirstAsync(tasks, ApplyTasks, cancellationToken).ConfigureAwait(false);
        await FirstAsync(nodes, ApplyNodes, cancellationToken).ConfigureAwait(false);
        await FirstAsync(controls, ApplyControls, cancellationToken).ConfigureAwait(false);
        logger.Information("watching {Prefix:l}: {Tasks} valid tasks, {Nodes} live nodes", layout.Prefix, view.Tasks.Count, view.Nodes.Count);
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.WhenAll(
        LoopAsync("tasks", tasks!, ApplyTasks, stoppingToken),
        LoopAsync("nodes", nodes!, ApplyNodes, stoppingToken),
        LoopAsync("control", controls!, ApplyControls, stoppingToken));

    /// <summary>
    /// The least time between two answers of the <c>nodes/</c> watch that brought a change: 5 ms per registered node,
    /// from 50 ms up to 500 ms. Every executor refreshes its registration's clock stamp every
    /// <see cref="ClockSkewGuard.StampInterval"/>, and every write under <c>nodes/</c> wakes every watcher of it: unpaced,
    /// N executors cost N²/10 watch requests a second (9,000 at 300). Paced, a watcher asks at most once per pace, so the
    /// fleet's watch requests stay within 2 per executor a second once it is over 100 nodes; the stamps written meanwhile
    /// come together in the next answer. The pace stays below <see cref="ClockSkewGuard.MaxWatchGap"/>, so those stamps are
    /// still timed: each reads up to one pace late, which can only make this clock look ahead, within the guard's
    /// <see cref="ClockSkewGuard.PeerAllowance"/>.
    /// </summary>
    public static TimeSpan NodesWatchPace(int nodes) => TimeSpan.FromMilliseconds(Math.Clamp(nodes, 10, 100) * 5);

    private BlockingQuery<IReadOnlyList<KvPair>> Watch(LedgerFolder folder, BlockingQueryOptions? options = null) =>
        new((q, ct) => ledger.ListAsync(folder, q, ct), options ?? WatchOptions, time);

    private async Task PlaceControlAnchorAsync(CancellationToken cancellationToken)
    {
        try
        {
            await ledger.PlaceControlAnchorAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ConsulException e) when (e is not ConsulPermissionDeniedException)
        {
            // Without it the control watch wakes more often, nothing worse; the next start tries again.
            logger.Debug("could not write the placeholder of {Folder:l}: {Problem:l}", layout.ControlPrefix, e.Message);
        }
    }

    private static async Task FirstAsync(BlockingQuery<IReadOnlyList<KvPair>> query, Action<ConsulResponse<IReadOnlyList<KvPair>>> apply, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                apply(await query.NextAsync(cancellationToken).ConfigureAwait(false));
                return;
            }
            catch (ConsulException e) when (e is not ConsulPermissionDeniedException)
            {
                // NextAsync backs off by itself before the next request.
            }
        }
    }

    private async Task LoopAsync(string name, BlockingQuery<IReadOnlyList<KvPair>> query, Action<ConsulResponse<IReadOnlyList<KvPair>>> apply, CancellationToken stoppingToken)
    {
        var failing = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                apply(await query.NextAsync(stoppingToken).ConfigureAwait(false));
                if (failing)
                {
                    logger.Information("watch of {Folder:l} recovered", name);
                    failing = false;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (ConsulException e)
            {
                if (!failing)
                {
                    logger.Warning("watch of {Folder:l} failed: {Problem:l}; retrying with backoff", name, e.Message);
                    failing = true;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.Error(e, "watch of {Folder:l}: unexpected failure; retrying", name);
                await Task.Delay(TimeSpan.FromSeconds(1), time, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private readonly ListingChange tasksChange = new();
    private readonly ListingChange nodesChange = new();
    private readonly ListingChange controlsChange = new();

    private readonly UnreadableKeys unreadable = new();

    /// <summary>The value decoded; null, logged once per value, when it is garbage. Nothing it holds can throw.</summary>
    private T? Readable<T>(KvPair pair, string kind)
        where T : class
    {
        if (StateJson.TryDecode<T>(Encoding.UTF8.GetString(pair.Value.Span), out var problem) is { } value)
        {
            unreadable.Readable(pair.Key);
            return value;
        }

        if (unreadable.FirstTime(pair.Key, pair.ModifyIndex))
        {
            logger.Error("the {Kind:l} at {Key:l} (index {Index}) is ignored: {Problem:l}; everything else runs on",
                kind, pair.Key, pair.ModifyIndex, problem);
        }

        return null;
    }

    private void ApplyTasks(ConsulResponse<IReadOnlyList<KvPair>> response)
    {
        skew.Observe(response.Meta);
        if (!tasksChange.IsNew(response.Value))
        {
            return;
        }

        view.SetTasks(reader.Read(response.Value));
        foreach (var (task, specIndex, reason, kept) in reader.NewRefusals)
        {
            _ = ReportRefusalAsync(task, new SpecRefusal(options?.Node ?? "", specIndex, reason, kept, time.GetUtcNow()));
        }
    }

    /// <summary>Writes <paramref name="refusal"/> where <c>dtask describe</c> shows it; a failure is logged, nothing more.</summary>
    private async Task ReportRefusalAsync(TaskId task, SpecRefusal refusal)
    {
        var key = layout.SpecRefusalKey(task.Namespace, task.Name);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await ledger.ReportSpecRefusalAsync(task, refusal, timeout.Token).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A report that cannot be written changes nothing about what runs.
        catch (Exception e) when (e is ConsulException or OperationCanceledException)
#pragma warning restore CA1031
        {
            logger.Warning("could not report the refused spec of {Namespace:l}/{Task:l} at {Key:l}: {Problem:l}", task.Namespace, task.Name, key, e.Message);
        }
    }

    private void ApplyNodes(ConsulResponse<IReadOnlyList<KvPair>> response)
    {
        skew.Observe(response.Meta);
        if (!nodesChange.IsNew(response.Value))
        {
            skew.ObservePeers(null, response.Meta);
            return;
        }

        var records = new List<NodeRecord>();
        foreach (var pair in response.Value)
        {
            if (pair.Session is not null && Readable<NodeRecord>(pair, "node registration") is { } record)
            {
                records.Add(record);
            }
        }

        skew.ObservePeers(records, response.Meta);
        view.SetNodes(records);
    }

    private void ApplyControls(ConsulResponse<IReadOnlyList<KvPair>> response)
    {
        skew.Observe(response.Meta);
        if (!controlsChange.IsNew(response.Value))
        {
            return;
        }

        var requests = new Dictionary<string, StoredControl>(StringComparer.Ordinal);
        foreach (var pair in response.Value)
        {
            if (KvLayout.TrySplitControlKey(pair.Key, layout.ControlPrefix, out var ns, out var name, out var action, out var id))
            {
                var request = Readable<ControlRequest>(pair, "control request");
                requests[pair.Key] = new StoredControl(new TaskId(ns, name), action, pair.Key, id, request, pair.CreateIndex, pair.ModifyIndex);
            }
        }

        view.SetControls(requests);
    }
}
