using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Dtask.Consul;
using Dtask.Consul.Blocking;
using Dtask.Consul.Errors;
using Dtask.Consul.Kv;
using Dtask.Core.Model;
using Dtask.Core.State;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dtask.Operator.Status;

/// <summary>
/// Watches <c>tasks/</c> and <c>state/</c> with blocking queries and says which tasks' status may have changed:
/// a spec written or deleted, a run claimed or finished, a lock taken or released. It only names tasks; the
/// caller reads them (<see cref="TaskObservationReader"/>) and rebuilds their status (<see cref="TaskStatusBuilder"/>).
/// Consul errors are logged and the watch goes on with the blocking query's backoff.
/// </summary>
public sealed class StatusWatcher
{
    private readonly ConsulClient client;
    private readonly KvLayout layout;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly BlockingQueryOptions options;

    /// <summary>Creates a watcher of the tasks under <paramref name="layout"/>.</summary>
    public StatusWatcher(ConsulClient client, KvLayout layout, TimeProvider? time = null, ILogger<StatusWatcher>? logger = null, BlockingQueryOptions? options = null)
    {
        this.client = client ?? throw new ArgumentNullException(nameof(client));
        this.layout = layout ?? throw new ArgumentNullException(nameof(layout));
        this.time = time ?? TimeProvider.System;
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        this.options = options ?? new BlockingQueryOptions { WaitTime = TimeSpan.FromMinutes(1) };
    }

    /// <summary>
    /// Yields batches of tasks whose status may have changed, until cancelled. The first batches name every task
    /// that has a spec or run state, so a caller starts from a full picture.
    /// </summary>
    public async IAsyncEnumerable<IReadOnlyList<TaskId>> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var changes = Channel.CreateUnbounded<IReadOnlyList<TaskId>>(new UnboundedChannelOptions { SingleReader = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var readers = new[]
        {
            WatchPrefixAsync(layout.TasksPrefix, TaskOfSpecKey, changes.Writer, stop.Token),
            WatchPrefixAsync(layout.StatePrefix, new TaskObservationReader(client, layout).TaskOfStateKey, changes.Writer, stop.Token),
        };
        try
        {
            while (await changes.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var batch = new HashSet<TaskId>();
                while (changes.Reader.TryRead(out var names))
                {
                    batch.UnionWith(names);
                }

                if (batch.Count > 0)
                {
                    yield return [.. batch.OrderBy(n => n.Namespace, StringComparer.Ordinal).ThenBy(n => n.Name, StringComparer.Ordinal)];
                }
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await Task.WhenAll(readers).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopped.
            }
        }
    }

    private (string Namespace, string Name)? TaskOfSpecKey(string key) =>
        KvLayout.TrySplitTaskKey(key, layout.TasksPrefix, out var ns, out var name) ? (ns, name) : null;

    private async Task WatchPrefixAsync(string prefix, Func<string, (string Namespace, string Name)?> taskOf, ChannelWriter<IReadOnlyList<TaskId>> changes, CancellationToken cancellationToken)
    {
        var query = new BlockingQuery<IReadOnlyList<KvPair>>((q, ct) => client.Kv.ListAsync(prefix, q, ct), options, time);
        var seen = new Dictionary<string, ulong>(StringComparer.Ordinal);
        while (!cancellationToken.IsCancellationRequested)
        {
            IReadOnlyList<KvPair> pairs;
            try
            {
                pairs = (await query.NextAsync(cancellationToken).ConfigureAwait(false)).Value;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (ConsulException e)
            {
                OperatorLog.WatchFailed(logger, prefix, e.Message);
                continue;
            }

            var changed = new HashSet<TaskId>();
            var now = new Dictionary<string, ulong>(pairs.Count, StringComparer.Ordinal);
            foreach (var pair in pairs)
            {
                // The session is part of what changes: a lock released by an expired session has a new ModifyIndex too.
                now[pair.Key] = pair.ModifyIndex;
                if ((!seen.TryGetValue(pair.Key, out var before) || before != pair.ModifyIndex) && taskOf(pair.Key) is { } task)
                {
                    changed.Add(new TaskId(task.Namespace, task.Name));
                }
            }

            foreach (var key in seen.Keys)
            {
                if (!now.ContainsKey(key) && taskOf(key) is { } task)
                {
                    changed.Add(new TaskId(task.Namespace, task.Name));
                }
            }

            seen = now;
            if (changed.Count > 0)
            {
                await changes.WriteAsync([.. changed], cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
