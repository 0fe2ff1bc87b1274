namespace Dtask.Core.State;

/// <summary>A live executor, as registered at <c>nodes/&lt;node&gt;</c> with its session (the key vanishes when the session does).</summary>
public sealed record NodeRecord
{
    /// <summary>The <see cref="State"/> of an executor that may claim and record slots.</summary>
    public const string Ready = "ready";

    /// <summary>The <see cref="State"/> of an executor whose clock is off by more than its skew limit: it neither claims nor records slots.</summary>
    public const string ClockSkewed = "clock-skewed";

    /// <summary>The node name (the host name unless <c>--node</c> says otherwise).</summary>
    public required string Node { get; init; }

    /// <summary>The labels tasks select on with <c>nodeSelector</c>.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>The dtask version the executor runs.</summary>
    public required string Version { get; init; }

    /// <summary>When the executor started.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>The executor's Consul session.</summary>
    public string? Session { get; init; }

    /// <summary>The executor's wall clock when it wrote this record (refreshed every few seconds): the other executors
    /// compare it with their own clocks on arrival.</summary>
    public DateTimeOffset? Clock { get; init; }

    /// <summary>The executor's estimate of its clock skew in seconds (its clock minus its references'), null while it has no reference.</summary>
    public double? Skew { get; init; }

    /// <summary><see cref="Ready"/> or <see cref="ClockSkewed"/>; null from executors that do not say.</summary>
    public string? State { get; init; }
}
