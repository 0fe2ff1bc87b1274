using Dtask.Consul.Kv;
using Dtask.Consul.Txn;
using Dtask.Core.Manifests;
using Dtask.Core.State;
using Dtask.Core.Validation;

namespace Dtask.Operator.Reconciliation;

/// <summary>A write the plan wants, with the outcome it stands for once committed.</summary>
/// <param name="Operation">A <c>cas</c> (create at index 0, update at the read ModifyIndex) or a <c>delete-cas</c>.</param>
/// <param name="Outcome">The outcome reported when the operation commits.</param>
public sealed record PlannedWrite(TxnOp Operation, TaskOutcome Outcome);

/// <summary>
/// The difference between what one source declares and what KV holds, computed without I/O: the writes to send
/// (each a check-and-set at the index read, so a concurrent writer makes them fail instead of being overwritten)
/// and the outcomes that need no write. Tasks of other sources are never written; declared ones are reported as
/// conflicts. Invalid declarations are never written and keep their name from being pruned; while any
/// declaration's name is unreadable (a YAML syntax error), nothing is pruned.
/// </summary>
/// <param name="Writes">The writes, in key order.</param>
/// <param name="Settled">Outcomes that need no write (unchanged, invalid, conflict).</param>
public sealed record ReconcilePlan(IReadOnlyList<PlannedWrite> Writes, IReadOnlyList<TaskOutcome> Settled)
{
    /// <summary>Computes the plan.</summary>
    /// <param name="owner">The source reconciling.</param>
    /// <param name="desired">What it declares.</param>
    /// <param name="stored">Every task in KV (or, for single-object calls, the ones concerned), by <c>ns/name</c>.</param>
    /// <param name="prune">Delete tasks this owner holds in KV and no longer declares.</param>
    /// <param name="layout">The KV layout.</param>
    /// <param name="now">The writer's clock: stamps <see cref="KvTaskSpec.ResumedAt"/> on a write that resumes a task.</param>
    /// <param name="signer">Signs every envelope written; a stored spec this key has not signed is rewritten signed. None: unsigned.</param>
    public static ReconcilePlan Compute(TaskOwner owner, IReadOnlyList<DesiredTask> desired, IReadOnlyDictionary<string, StoredTask> stored,
        bool prune, KvLayout layout, DateTimeOffset now, SpecSigner? signer = null)
    {
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(stored);
        ArgumentNullException.ThrowIfNull(layout);

        var writes = new List<PlannedWrite>();
        var settled = new List<TaskOutcome>();
        var declared = new HashSet<string>(StringComparer.Ordinal);
        var planned = new HashSet<string>(StringComparer.Ordinal);

        foreach (var task in desired)
        {
            if (task.HasName)
            {
                declared.Add($"{task.Namespace}/{task.Name}");
            }
        }

        foreach (var task in desired)
        {
            var key = $"{task.Namespace}/{task.Name}";
            stored.TryGetValue(key, out var current);
            if (!task.IsValid)
            {
                settled.Add(new TaskOutcome(task.Namespace ?? "?", task.Name ?? "?", TaskAction.Invalid)
                {
                    Message = task.HasName || !prune ? null : "its name cannot be read, so no task is deleted until it can",
                    Errors = task.Errors,
                    Source = task.Source,
                    Owner = current?.Envelope?.Owner,
                    Generation = current?.Envelope?.Generation,
                    PreviousSpecKept = current?.Envelope is not null && current.Envelope.Owner == owner,
                });
                continue;
            }

            if (!planned.Add(key))
            {
                settled.Add(new TaskOutcome(task.Namespace!, task.Name!, TaskAction.Invalid)
                {
                    Errors = [new FieldError("metadata.name", $"{key} is declared more than once")],
                    Source = task.Source,
                });
                continue;
            }

            settled.AddRange(PlanOne(owner, task, current, layout, writes, now, signer));
        }

        // A document whose name cannot be read could declare any task: deleting "undeclared" tasks then could
        // delete the very task it declares. Pruning waits until every document is readable again.
        var unreadable = desired.Any(d => !d.HasName);
        if (prune && !unreadable)
        {
            foreach (var (key, current) in stored.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                if (!declared.Contains(key) && current.Envelope is { } envelope && envelope.Owner == owner)
                {
                    writes.Add(new PlannedWrite(
                        TxnOp.DeleteCas(layout.TaskKey(current.Namespace, current.Name), current.ModifyIndex),
                        new TaskOutcome(current.Namespace, current.Name, TaskAction.Deleted) { Owner = owner, Generation = envelope.Generation }));
                }
            }
        }

        return new ReconcilePlan(writes, settled);
    }

    private static IEnumerable<TaskOutcome> PlanOne(TaskOwner owner, DesiredTask task, StoredTask? current, KvLayout layout, List<PlannedWrite> writes, DateTimeOffset now, SpecSigner? signer)
    {
        var spec = task.Task!.Spec;
        var hash = TaskJson.SpecHash(spec);
        var sourceGeneration = owner.Kind == TaskOwnerKind.Kubernetes ? task.Task.Metadata.Generation : null;
        var kvKey = layout.TaskKey(task.Namespace!, task.Name!);

        if (current is not null && (current.Envelope is null || current.Envelope.Owner != owner))
        {
            var holder = current.Envelope?.Owner;
            yield return new TaskOutcome(task.Namespace!, task.Name!, TaskAction.Conflict)
            {
                Owner = holder,
                Source = task.Source,
                Generation = current.Envelope?.Generation,
                Message = holder is null
                    ? $"{current.Key} holds a value in Consul that is not a task envelope; not changed"
                    : $"{current.Key} is owned by {holder}; not changed",
            };
            yield break;
        }

        if (current?.Envelope is { } stored)
        {
            var sameSpec = string.Equals(stored.SpecHash, hash, StringComparison.Ordinal);
            if (sameSpec && (sourceGeneration is null || sourceGeneration == stored.Generation) && (signer is null || signer.HasSigned(stored)))
            {
                yield return new TaskOutcome(task.Namespace!, task.Name!, TaskAction.Unchanged)
                {
                    Owner = owner,
                    Generation = stored.Generation,
                    Source = task.Source,
                };
                yield break;
            }

            var generation = sourceGeneration ?? stored.Generation + 1;
            var envelope = Envelope(task, owner, generation, hash).Over(stored, now);
            envelope = signer?.Sign(envelope) ?? envelope;
            writes.Add(new PlannedWrite(TxnOp.Cas(kvKey, KvValue.Utf8(envelope.ToJson()), current.ModifyIndex),
                new TaskOutcome(task.Namespace!, task.Name!, TaskAction.Configured) { Owner = owner, Generation = generation, Source = task.Source }));
            yield break;
        }

        var created = Envelope(task, owner, sourceGeneration ?? 1, hash);
        created = signer?.Sign(created) ?? created;
        writes.Add(new PlannedWrite(TxnOp.Cas(kvKey, KvValue.Utf8(created.ToJson()), 0),
            new TaskOutcome(task.Namespace!, task.Name!, TaskAction.Created) { Owner = owner, Generation = created.Generation, Source = task.Source }));
    }

    private static KvTaskSpec Envelope(DesiredTask task, TaskOwner owner, long generation, string hash) => new()
    {
        Namespace = task.Namespace!,
        Name = task.Name!,
        Generation = generation,
        SpecHash = hash,
        Owner = owner,
        Spec = task.Task!.Spec,
    };
}
