namespace Dtask.Core.Model;

/// <summary>What the operator observed about a task; rebuilt from KV, never read to decide.</summary>
public sealed record ScheduledTaskStatus
{
    /// <summary>The <c>metadata.generation</c> this status describes.</summary>
    public long? ObservedGeneration { get; init; }

    /// <summary>The most recent slot that was claimed.</summary>
    public DateTimeOffset? LastScheduleTime { get; init; }

    /// <summary>When the most recent successful run finished.</summary>
    public DateTimeOffset? LastSuccessfulTime { get; init; }

    /// <summary>The most recent run.</summary>
    public LastRunStatus? LastRun { get; init; }

    /// <summary>The next nominal slot, without jitter.</summary>
    public DateTimeOffset? NextScheduleTime { get; init; }

    /// <summary><c>Ready</c> and <c>Synced</c>.</summary>
    public IReadOnlyList<TaskCondition>? Conditions { get; init; }
}

/// <summary>The most recent run of a task, as shown by <c>kubectl get stask</c>.</summary>
public sealed record LastRunStatus
{
    /// <summary>The nominal fire time of the run's slot.</summary>
    public DateTimeOffset? Slot { get; init; }

    /// <summary>The node that ran it.</summary>
    public string? Node { get; init; }

    /// <summary>When the child started.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When the child finished; absent while it runs.</summary>
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>The child's exit code; absent while it runs or when it never started.</summary>
    public int? ExitCode { get; init; }

    /// <summary>The run's state as the executor recorded it, for example <c>running</c>, <c>succeeded</c>, <c>failed</c>, <c>skipped</c>, <c>missed</c>, <c>lost</c>.</summary>
    public string? Result { get; init; }
}

/// <summary>A Kubernetes-style condition.</summary>
public sealed record TaskCondition
{
    /// <summary>The spec passed validation and can be scheduled.</summary>
    public const string Ready = "Ready";

    /// <summary>The spec was written to KV.</summary>
    public const string Synced = "Synced";

    /// <summary><see cref="Ready"/> or <see cref="Synced"/>.</summary>
    public string? Type { get; init; }

    /// <summary><c>True</c>, <c>False</c> or <c>Unknown</c>.</summary>
    public string? Status { get; init; }

    /// <summary>A CamelCase word, such as <c>InvalidSpec</c>.</summary>
    public string? Reason { get; init; }

    /// <summary>For people: the field path and the reason when invalid.</summary>
    public string? Message { get; init; }

    /// <summary>When <see cref="Status"/> last changed.</summary>
    public DateTimeOffset? LastTransitionTime { get; init; }
}
