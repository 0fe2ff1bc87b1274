namespace Dtask.Consul.Http;

/// <summary>What every Consul answer carries beside its body.</summary>
/// <param name="Index"><c>X-Consul-Index</c>: the index to block on next (0 when the endpoint sends none).</param>
/// <param name="KnownLeader"><c>X-Consul-KnownLeader</c>: whether the answering server knew a leader.</param>
/// <param name="LastContact"><c>X-Consul-LastContact</c>: how stale a <c>stale</c> read may be.</param>
/// <param name="ServerDate">The agent's <c>Date</c> header (its clock, to one second), for clock-skew checks.</param>
/// <param name="RequestTime">How long the request took, as measured by this client.</param>
public sealed record ConsulResponseMeta(
    ulong Index,
    bool KnownLeader,
    TimeSpan LastContact,
    DateTimeOffset? ServerDate,
    TimeSpan RequestTime);

/// <summary>A decoded answer and its metadata.</summary>
public sealed record ConsulResponse<T>(T Value, ConsulResponseMeta Meta);

/// <summary>Read consistency (https://developer.hashicorp.com/consul/api-docs/features/consistency).</summary>
public enum ConsistencyMode
{
    /// <summary>The leader answers from its state, usually fresh; can be stale for a moment after a leader change.</summary>
    Default,

    /// <summary>The leader confirms it is still leader before answering (a round of heartbeats): linearizable.</summary>
    Consistent,

    /// <summary>Any server answers from its own state; see <see cref="ConsulResponseMeta.LastContact"/>.</summary>
    Stale,
}

/// <summary>Options of a read.</summary>
public sealed record QueryOptions
{
    /// <summary>Default options: default consistency, no blocking.</summary>
    public static QueryOptions None { get; } = new();

    /// <summary>Linearizable read, no blocking.</summary>
    public static QueryOptions ConsistentRead { get; } = new() { Consistency = ConsistencyMode.Consistent };

    /// <summary>A stale read: any server answers from its own copy, without asking the leader (may lag a little).</summary>
    public static QueryOptions StaleRead { get; } = new() { Consistency = ConsistencyMode.Stale };

    /// <summary>The consistency mode.</summary>
    public ConsistencyMode Consistency { get; init; }

    /// <summary>
    /// Block until the data's index is greater than this (a blocking query). 0 means do not block.
    /// </summary>
    public ulong WaitIndex { get; init; }

    /// <summary>The longest a blocking query waits (Consul's default is 5 minutes, its maximum 10).</summary>
    public TimeSpan? WaitTime { get; init; }
}
