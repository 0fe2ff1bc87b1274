using Dtask.Consul;
using Dtask.Consul.Txn;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Dtask.Operator.Reconciliation;

/// <summary>
/// Reconciles what one source declares into Consul KV, level-based in the manner of the Kubernetes CronJob
/// controller: read what is under <c>tasks/</c>, compute the difference for this owner (<see cref="ReconcilePlan"/>),
/// write it once in transactions of at most <see cref="ConsulTxn.MaxOperations"/> check-and-set operations, and
/// report an outcome per task. Every transaction goes through the <see cref="ILeadershipFence"/> it was given, so a
/// replica that no longer leads its source writes nothing (<see cref="LeadershipLostException"/>, thrown to the
/// caller). A transaction that rolls back (another writer changed a key since it was read) commits nothing; the
/// reconciler reads again and recomputes, so no update is lost. In the steady state it reads once and writes nothing.
/// </summary>
public sealed class TaskReconciler
{
    /// <summary>How many read–write rounds a call makes before it gives up on keys that keep changing.</summary>
    public const int MaxAttempts = 5;

    private readonly ConsulClient client;
    private readonly KvLayout layout;
    private readonly ILogger logger;
    private readonly UnreadableKeys unreadable = new();
    private readonly TimeProvider time;
    private readonly ILeadershipFence fence;

    /// <summary>Creates a reconciler writing under <paramref name="layout"/>.</summary>
    /// <param name="client">The Consul client reads and (through the fence) writes go to.</param>
    /// <param name="layout">The KV layout.</param>
    /// <param name="logger">Where writes are logged.</param>
    /// <param name="time">The clock stamping resumes.</param>
    /// <param name="fence">The leadership fence every write goes through; none (<see cref="NoLeadershipFence"/>) when null.</param>
    public TaskReconciler(ConsulClient client, KvLayout layout, ILogger<TaskReconciler>? logger = null, TimeProvider? time = null, ILeadershipFence? fence = null)
    {
        this.time = time ?? TimeProvider.System;
        this.client = client ?? throw new ArgumentNullException(nameof(client));
        this.fence = fence ?? new NoLeadershipFence(client);
        this.layout = layout ?? throw new ArgumentNullException(nameof(layout));
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The KV layout written to.</summary>
    public KvLayout Layout => layout;

    /// <summary>Signs every spec written (and rewrites, signed, a stored spec it has not signed); none: specs are written unsigned.</summary>
    public SpecSigner? Signer { get; init; }

    /// <summary>Reconciles manifest documents (valid or not) read by <see cref="ManifestReader"/>.</summary>
    /// <param name="owner">The source: tasks owned by others are never changed.</param>
    /// <param name="desired">Every document the source holds.</param>
    /// <param name="prune">Delete this owner's tasks that are no longer declared (false for <c>dtask apply</c> without <c>--prune</c>).</param>
    /// <param name="cancellationToken">Cancels the reconcile (writes already committed stay).</param>
    public Task<ReconcileResult> ReconcileAsync(TaskOwner owner, IReadOnlyList<ManifestDocument> desired, bool prune = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(desired);
        return ReconcileAsync(owner, desired.Select(DesiredTask.From).ToList(), prune, cancellationToken);
    }

    /// <summary>Reconciles typed tasks (each checked with the validator first).</summary>
    public Task<ReconcileResult> ReconcileAsync(TaskOwner owner, IReadOnlyList<ScheduledTask> desired, bool prune = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(desired);
        return ReconcileAsync(owner, desired.Select(t => DesiredTask.From(t, owner.ToString())).ToList(), prune, cancellationToken);
    }

    /// <summary>Reconciles declarations: the general form of the other overloads.</summary>
    public Task<ReconcileResult> ReconcileAsync(TaskOwner owner, IReadOnlyList<DesiredTask> desired, bool prune, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(desired);
        return RunAsync(owner, desired, prune, ReadAllAsync, cancellationToken);
    }

    /// <summary>
    /// Applies one task (the Kubernetes source calls this per watch event): created, configured, unchanged,
    /// invalid (nothing written, the previous spec stays) or conflict. Reads and writes only that task's key.
    /// </summary>
    public async Task<TaskOutcome> ApplyOneAsync(TaskOwner owner, ScheduledTask task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(task);
        var desired = DesiredTask.From(task, owner.ToString());
        var result = await RunAsync(owner, [desired], prune: false,
            desired.HasName ? ct => ReadOneAsync(desired.Namespace!, desired.Name!, ct) : _ => Task.FromResult(Empty),
            cancellationToken).ConfigureAwait(false);
        return result.Outcomes[0];
    }

    /// <summary>
    /// Deletes one task owned by <paramref name="owner"/>: deleted, not found, or conflict when another source owns
    /// it (unless <paramref name="force"/>). The delete is a <c>delete-cas</c> at the index read.
    /// </summary>
    public async Task<TaskOutcome> DeleteOneAsync(TaskOwner owner, string @namespace, string name, bool force = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentException.ThrowIfNullOrEmpty(@namespace);
        ArgumentException.ThrowIfNullOrEmpty(name);
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            var stored = await ReadOneAsync(@namespace, name, cancellationToken).ConfigureAwait(false);
            if (!stored.TryGetValue($"{@namespace}/{name}", out var current))
            {
                return new TaskOutcome(@namespace, name, TaskAction.NotFound);
            }

            var holder = current.Envelope?.Owner;
            if (holder != owner && !force)
            {
                return new TaskOutcome(@namespace, name, TaskAction.Conflict)
                {
                    Owner = holder,
                    Generation = current.Envelope?.Generation,
                    Message = holder is null
                        ? $"{current.Key} holds a value in Consul that is not a task envelope; not changed"
                        : $"{current.Key} is owned by {holder}; not changed",
                };
            }

            var txn = await fence.ExecuteAsync([TxnOp.DeleteCas(layout.TaskKey(@namespace, name), current.ModifyIndex)], cancellationToken)
                .ConfigureAwait(false);
            if (txn.Committed)
            {
                OperatorLog.Deleted(logger, current.Key, holder, owner);
                return new TaskOutcome(@namespace, name, TaskAction.Deleted) { Owner = holder, Generation = current.Envelope?.Generation };
            }

            OperatorLog.DeleteRaced(logger, current.Key);
        }

        return new TaskOutcome(@namespace, name, TaskAction.Conflict)
        {
            Message = $"{@namespace}/{name} kept changing in Consul while it was being deleted; not changed",
        };
    }

    /// <summary>
    /// Makes the <see cref="Status.SourceProblem"/> keys of <paramref name="owner"/> what <paramref name="problems"/>
    /// says (by <c>ns/name</c>): writes new and changed ones, deletes the owner's others, leaves other owners' alone.
    /// Each write is a check-and-set through the fence; one that races with another writer waits for the next call.
    /// </summary>
    /// <returns>True when every write committed (false when one raced with another writer).</returns>
    public async Task<bool> SyncProblemsAsync(TaskOwner owner, IReadOnlyDictionary<string, Status.SourceProblem> problems, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(problems);
        var prefix = Status.SourceProblem.Prefix(layout);
        var stored = (await client.Kv.ListAsync(prefix, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        var mine = owner.ToString();
        var operations = new List<TxnOp>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pair in stored)
        {
            var key = pair.Key[prefix.Length..];
            var current = Status.SourceProblem.TryParse(pair.ValueAsString());
            if (problems.TryGetValue(key, out var wanted))
            {
                seen.Add(key);
                if (current is null || current.ToJson() != wanted.ToJson())
                {
                    operations.Add(TxnOp.Cas(pair.Key, Consul.Kv.KvValue.Utf8(wanted.ToJson()), pair.ModifyIndex));
                }
            }
            else if (current?.Owner == mine)
            {
                operations.Add(TxnOp.DeleteCas(pair.Key, pair.ModifyIndex));
            }
        }

        foreach (var (key, wanted) in problems.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!seen.Contains(key))
            {
                operations.Add(TxnOp.Cas(prefix + key, Consul.Kv.KvValue.Utf8(wanted.ToJson()), 0));
            }
        }

        var committed = true;
        for (var start = 0; start < operations.Count; start += fence.MaxOperations)
        {
            var batch = operations.Skip(start).Take(fence.MaxOperations).ToList();
            committed &= (await fence.ExecuteAsync(batch, cancellationToken).ConfigureAwait(false)).Committed;
        }

        return committed;
    }

    private static readonly IReadOnlyDictionary<string, StoredTask> Empty = new Dictionary<string, StoredTask>();

    private async Task<ReconcileResult> RunAsync(TaskOwner owner, IReadOnlyList<DesiredTask> desired, bool prune,
        Func<CancellationToken, Task<IReadOnlyDictionary<string, StoredTask>>> read, CancellationToken cancellationToken)
    {
        var committed = new Dictionary<string, TaskOutcome>(StringComparer.Ordinal);
        var writes = 0;
        for (var attempt = 1; ; attempt++)
        {
            var stored = await read(cancellationToken).ConfigureAwait(false);
            var plan = ReconcilePlan.Compute(owner, desired, stored, prune, layout, time.GetUtcNow(), Signer);
            var pending = new List<PlannedWrite>();
            var rolledBack = false;
            for (var start = 0; start < plan.Writes.Count; start += fence.MaxOperations)
            {
                var batch = plan.Writes.Skip(start).Take(fence.MaxOperations).ToList();
                if (rolledBack)
                {
                    pending.AddRange(batch);
                    continue;
                }

                var txn = await fence.ExecuteAsync(batch.ConvertAll(w => w.Operation), cancellationToken).ConfigureAwait(false);
                writes++;
                if (txn.Committed)
                {
                    foreach (var write in batch)
                    {
                        committed[write.Outcome.Key] = write.Outcome;
                        OperatorLog.Wrote(logger, write.Outcome, write.Outcome.Generation, owner);
                    }
                }
                else
                {
                    rolledBack = true;
                    pending.AddRange(batch);
                    OperatorLog.RolledBack(logger, txn.Errors, attempt, MaxAttempts);
                }
            }

            if (!rolledBack || attempt == MaxAttempts)
            {
                return new ReconcileResult(Merge(plan, committed, pending), writes, attempt);
            }
        }
    }

    private static List<TaskOutcome> Merge(ReconcilePlan plan, Dictionary<string, TaskOutcome> committed, List<PlannedWrite> failed)
    {
        var outcomes = new List<TaskOutcome>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var outcome in plan.Settled)
        {
            // A key written in an earlier round reads as unchanged in the last one: report the write.
            var reported = outcome.Action == TaskAction.Unchanged && committed.TryGetValue(outcome.Key, out var earlier) ? earlier : outcome;
            outcomes.Add(reported);
            seen.Add(outcome.Key);
        }

        foreach (var write in failed)
        {
            outcomes.Add(write.Outcome with
            {
                Action = TaskAction.Conflict,
                Message = $"{write.Outcome.Key} kept changing in Consul while it was being written ({MaxAttempts} attempts); not changed",
            });
            seen.Add(write.Outcome.Key);
        }

        foreach (var (key, outcome) in committed)
        {
            if (seen.Add(key))
            {
                outcomes.Add(outcome);
            }
        }

        return [.. outcomes
            .OrderBy(o => o.Namespace, StringComparer.Ordinal)
            .ThenBy(o => o.Name, StringComparer.Ordinal)
            .ThenBy(o => o.Source, StringComparer.Ordinal)];
    }

    private async Task<IReadOnlyDictionary<string, StoredTask>> ReadAllAsync(CancellationToken cancellationToken)
    {
        var pairs = await client.Kv.ListAsync(layout.TasksPrefix, cancellationToken: cancellationToken).ConfigureAwait(false);
        var stored = new Dictionary<string, StoredTask>(StringComparer.Ordinal);
        foreach (var pair in pairs.Value)
        {
            if (StoredTask.From(pair, layout) is { } task)
            {
                stored[task.Key] = task;
                if (task.Envelope is not null || pair.Value.IsEmpty)
                {
                    unreadable.Readable(pair.Key);
                }
                else if (unreadable.FirstTime(pair.Key, pair.ModifyIndex))
                {
                    OperatorLog.UnreadableSpec(logger, pair.Key, pair.ModifyIndex); // Once per value, not once per pass.
                }
            }
        }

        return stored;
    }

    private async Task<IReadOnlyDictionary<string, StoredTask>> ReadOneAsync(string @namespace, string name, CancellationToken cancellationToken)
    {
        var pair = await client.Kv.GetAsync(layout.TaskKey(@namespace, name), cancellationToken: cancellationToken).ConfigureAwait(false);
        var stored = new Dictionary<string, StoredTask>(StringComparer.Ordinal);
        if (pair.Value is { } value && StoredTask.From(value, layout) is { } task)
        {
            stored[task.Key] = task;
        }

        return stored;
    }
}
