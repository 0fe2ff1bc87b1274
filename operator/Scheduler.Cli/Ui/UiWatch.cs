using Dtask.Cli.Commands.Tasks;
using Dtask.Consul;
using Dtask.Consul.Blocking;
using Dtask.Consul.Errors;
using Dtask.Consul.Kv;
using Dtask.Core.Scheduling;
using Dtask.Core.State;
using Dtask.Operator.Status;

namespace Dtask.Cli.Ui;

/// <summary>One task as the page shows it: its observation (history without output tails) and its schedule.</summary>
/// <param name="Observation">What KV says about the task; run records carry no output tail (the task view reads those on demand).</param>
/// <param name="Schedule">The task's schedule, or null when the stored spec has none that parses.</param>
internal sealed record UiTask(TaskObservation Observation, TaskSchedule? Schedule);

/// <summary>Everything the page shows but one task's output tails, as of one answer of the watch.</summary>
/// <param name="Version">Increases with every new snapshot (and with every change of <paramref name="Error"/>).</param>
/// <param name="Tasks">The tasks by namespace, then name.</param>
/// <param name="Nodes">The live executors by name.</param>
/// <param name="LastSeen">Each executor's clock when it last refreshed its registration, by node.</param>
/// <param name="Namespaces">The namespaces that hold tasks.</param>
/// <param name="Error">Why the last read of Consul failed, while it does; null otherwise.</param>
internal sealed record UiSnapshot(long Version, IReadOnlyList<UiTask> Tasks, IReadOnlyList<NodeListItem> Nodes, IReadOnlyDictionary<string, DateTimeOffset> LastSeen,
    IReadOnlyList<string> Namespaces, string? Error)
{
    /// <summary>Before the first answer.</summary>
    public static UiSnapshot Empty { get; } = new(0, [], [], new Dictionary<string, DateTimeOffset>(), [], null);

    /// <summary>True until the watch has had its first answer.</summary>
    public bool Loading => Version == 0;
}

/// <summary>
/// The one watch of a UI server: a blocking query on the listing of the whole prefix (tasks, state, nodes, problems),
/// turned into a <see cref="UiSnapshot"/> on each change and announced to every open page through
/// <see cref="WaitForChangeAsync"/>. However many tabs are open, Consul sees one watcher.
/// </summary>
internal sealed class UiWatch(ConsulClient client, KvLayout layout, TimeProvider time)
{
    /// <summary>The least time between two reads of the listing.</summary>
    public static readonly TimeSpan MinRefresh = TimeSpan.FromMilliseconds(400);

    private readonly object gate = new();
    private TaskCompletionSource changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private UiSnapshot snapshot = UiSnapshot.Empty;

    /// <summary>The latest snapshot.</summary>
    public UiSnapshot Current
    {
        get
        {
            lock (gate)
            {
                return snapshot;
            }
        }
    }

    /// <summary>Completes when a snapshot newer than <paramref name="seen"/> exists (at once if one does), or when cancelled.</summary>
    public Task WaitForChangeAsync(long seen, CancellationToken cancellationToken)
    {
        Task wait;
        lock (gate)
        {
            if (snapshot.Version > seen)
            {
                return Task.CompletedTask;
            }

            wait = changed.Task;
        }

        return wait.WaitAsync(cancellationToken);
    }

    /// <summary>Watches until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var query = new BlockingQuery<IReadOnlyList<KvPair>>((q, ct) => client.Kv.ListAsync(layout.Prefix, q, ct),
            new BlockingQueryOptions { WaitTime = TimeSpan.FromMinutes(1), MinInterval = TimeSpan.FromMilliseconds(100) }, time);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var started = time.GetTimestamp();
                var answer = await query.NextAsync(cancellationToken).ConfigureAwait(false);
                Publish(Build(answer.Value), null);

                // A busy fleet changes the prefix many times a second: the whole listing is read at most every
                // MinRefresh, which keeps Consul's and this server's work bounded and still shows a change within a second.
                var rest = MinRefresh - time.GetElapsedTime(started);
                if (rest > TimeSpan.Zero)
                {
                    await Task.Delay(rest, time, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (ConsulException e)
            {
                if (Current.Error != e.Message)
                {
                    Publish(null, e.Message);
                }
            }
        }
    }

    private (IReadOnlyList<UiTask> Tasks, IReadOnlyList<NodeListItem> Nodes, IReadOnlyDictionary<string, DateTimeOffset> LastSeen) Build(IReadOnlyList<KvPair> pairs)
    {
        var reader = new TaskObservationReader(client, layout);
        var states = pairs.Where(p => p.Key.StartsWith(layout.StatePrefix, StringComparison.Ordinal)).ToList();
        var observations = reader.Observe(pairs, states, pairs);
        var tasks = new List<UiTask>(observations.Count);
        foreach (var observation in observations)
        {
            if (observation.Envelope is not { } envelope)
            {
                continue;
            }

            TaskSchedule? schedule = null;
            try
            {
                schedule = TaskSchedule.Create(envelope.Spec.ToScheduleSpec(observation.Key));
            }
            catch (ArgumentException)
            {
                // An invalid schedule is shown as a problem (the status conditions say why); it has no slots.
            }

            // Output tails stay in Consul: the task view reads them for the one task it shows.
            var lean = observation with
            {
                Current = observation.Current is { } current ? current with { OutputTail = null } : null,
                History = [.. observation.History.Select(r => r with { OutputTail = null })],
            };
            tasks.Add(new UiTask(lean, schedule));
        }

        var locks = GetCommand.LockHolders(reader, layout, states);
        var nodePairs = pairs.Where(p => p.Key.StartsWith(layout.NodesPrefix, StringComparison.Ordinal)).ToList();
        var nodes = GetCommand.Nodes(nodePairs, locks);
        var lastSeen = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        foreach (var pair in nodePairs)
        {
            if (StateJson.TryDeserialize<NodeRecord>(pair.ValueAsString()) is { Clock: { } clock } node)
            {
                lastSeen[node.Node] = clock;
            }
        }

        return (tasks, nodes, lastSeen);
    }

    private void Publish((IReadOnlyList<UiTask> Tasks, IReadOnlyList<NodeListItem> Nodes, IReadOnlyDictionary<string, DateTimeOffset> LastSeen)? built, string? error)
    {
        TaskCompletionSource released;
        lock (gate)
        {
            snapshot = built is { } b
                ? new UiSnapshot(snapshot.Version + 1, b.Tasks, b.Nodes, b.LastSeen, [.. b.Tasks.Select(t => t.Observation.Namespace).Distinct(StringComparer.Ordinal)], null)
                : snapshot with { Version = snapshot.Version + 1, Error = error };
            released = changed;
            changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        released.TrySetResult();
    }
}
