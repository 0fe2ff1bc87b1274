namespace Dtask.Core.State;

/// <summary>A live executor, as registered at <c>nodes/&lt;node&gt;</c> with its session (the key vanishes when the session does).</summary>
public sealed record NodeRecord
{
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
}
