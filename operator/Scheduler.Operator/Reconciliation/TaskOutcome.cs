using Dtask.Core.Manifests;
using Dtask.Core.Validation;

namespace Dtask.Operator.Reconciliation;

/// <summary>What a reconcile did, or refused to do, for one task.</summary>
public enum TaskAction
{
    /// <summary>The task was not in KV and was written.</summary>
    Created,

    /// <summary>The task's spec (or generation) changed and was rewritten.</summary>
    Configured,

    /// <summary>KV already holds this spec and generation: nothing written.</summary>
    Unchanged,

    /// <summary>The task was removed from KV.</summary>
    Deleted,

    /// <summary>The declaration failed validation: nothing written, the previous valid spec (if any) stays.</summary>
    Invalid,

    /// <summary>Another source owns the task: nothing written.</summary>
    Conflict,

    /// <summary>There was nothing to delete.</summary>
    NotFound,
}

/// <summary>The outcome of one task in a reconcile.</summary>
/// <param name="Namespace">The task's namespace (<c>?</c> when unreadable).</param>
/// <param name="Name">The task's name (<c>?</c> when unreadable).</param>
/// <param name="Action">What happened.</param>
public sealed record TaskOutcome(string Namespace, string Name, TaskAction Action)
{
    /// <summary>The owner of the task in KV: the other source for <see cref="TaskAction.Conflict"/>; the writer otherwise.</summary>
    public TaskOwner? Owner { get; init; }

    /// <summary>The generation now in KV, when there is one.</summary>
    public long? Generation { get; init; }

    /// <summary>The validator's errors for <see cref="TaskAction.Invalid"/>.</summary>
    public IReadOnlyList<FieldError> Errors { get; init; } = [];

    /// <summary>Where the declaration came from (a manifest file and document index, or <c>kubernetes</c>).</summary>
    public string? Source { get; init; }

    /// <summary>For <see cref="TaskAction.Invalid"/>: true when KV still holds an earlier valid spec of the task.</summary>
    public bool PreviousSpecKept { get; init; }

    /// <summary>A detail for people, such as why a conflict was not resolved.</summary>
    public string? Message { get; init; }

    /// <summary><c>namespace/name</c>.</summary>
    public string Key => $"{Namespace}/{Name}";

    /// <summary>True for outcomes that wrote to KV.</summary>
    public bool Wrote => Action is TaskAction.Created or TaskAction.Configured or TaskAction.Deleted;

    /// <summary>A one-line description in the manner of kubectl: <c>ops/backup created</c>, <c>ops/backup is owned by dir:/x; not changed</c>.</summary>
    public override string ToString() => Action switch
    {
        TaskAction.Created => $"{Key} created",
        TaskAction.Configured => $"{Key} configured",
        TaskAction.Unchanged => $"{Key} unchanged",
        TaskAction.Deleted => $"{Key} deleted",
        TaskAction.NotFound => $"{Key} not found",
        TaskAction.Conflict => Message ?? $"{Key} is owned by {Owner}; not changed",
        _ => $"{Key} invalid ({string.Join("; ", Errors)}){(PreviousSpecKept ? "; the previous valid spec stays in Consul" : "")}{(Message is null ? "" : "; " + Message)}",
    };
}

/// <summary>What one reconcile did.</summary>
/// <param name="Outcomes">One outcome per declared task (and per deleted task), ordered by namespace and name.</param>
/// <param name="Writes">The write requests sent (each transaction of up to 64 operations counts once).</param>
/// <param name="Attempts">How many read–write rounds it took (more than one when a concurrent writer changed a key).</param>
public sealed record ReconcileResult(IReadOnlyList<TaskOutcome> Outcomes, int Writes, int Attempts)
{
    /// <summary>Outcomes with the given action.</summary>
    public IEnumerable<TaskOutcome> With(TaskAction action) => Outcomes.Where(o => o.Action == action);

    /// <summary>How many outcomes have the given action.</summary>
    public int Count(TaskAction action) => Outcomes.Count(o => o.Action == action);

    /// <summary>True when any declaration was invalid.</summary>
    public bool HasInvalid => Outcomes.Any(o => o.Action == TaskAction.Invalid);

    /// <summary>True when any task is owned by another source.</summary>
    public bool HasConflicts => Outcomes.Any(o => o.Action == TaskAction.Conflict);

    /// <summary><c>3 created, 1 configured, 996 unchanged, 0 deleted, 0 invalid, 0 conflicts; 1 write</c>.</summary>
    public string Summary =>
        $"{Count(TaskAction.Created)} created, {Count(TaskAction.Configured)} configured, {Count(TaskAction.Unchanged)} unchanged, " +
        $"{Count(TaskAction.Deleted)} deleted, {Count(TaskAction.Invalid)} invalid, {Count(TaskAction.Conflict)} conflicts; " +
        $"{Writes} write{(Writes == 1 ? "" : "s")}";

    /// <inheritdoc cref="Summary" />
    public override string ToString() => Summary;
}
