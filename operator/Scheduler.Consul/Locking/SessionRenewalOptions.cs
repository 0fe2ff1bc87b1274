using Dtask.Consul.Http;
using Dtask.Consul.Sessions;

namespace Dtask.Consul.Locking;

/// <summary>How a <see cref="SessionRenewal"/> creates (or adopts) its session and keeps it alive.</summary>
public record SessionRenewalOptions
{
    /// <summary>The session's name, for people reading Consul. Ignored when adopting a session.</summary>
    public string Name { get; init; } = "dtask";

    /// <summary>
    /// The TTL to ask for (10 s to 24 h); for an adopted session, the TTL assumed until the first renewal tells the
    /// real one. The server's answer to each renewal wins, as it may be longer.
    /// </summary>
    public TimeSpan Ttl { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>The lock-delay of a created session (Consul's default, 15 s). Ignored when adopting a session.</summary>
    public TimeSpan LockDelay { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Release (default) or delete the held keys when a created session ends. Ignored when adopting a session.</summary>
    public SessionBehavior Behavior { get; init; } = SessionBehavior.Release;

    /// <summary>
    /// The Consul catalog node to create the session on (it must be registered); the node of the agent that answers
    /// when null. Consul's ACL rules on sessions (<c>session "&lt;node&gt;"</c>) are keyed by this node. Ignored when
    /// adopting a session.
    /// </summary>
    public string? Node { get; init; }

    /// <summary>Between renewals; a third of the TTL when null.</summary>
    public TimeSpan? RenewInterval { get; init; }

    /// <summary>The session counts as lost when no renewal succeeded for the TTL minus this; a tenth of the TTL (at least 1 s) when null.</summary>
    public TimeSpan? LostMargin { get; init; }

    /// <summary>Sees the metadata of every successful renewal (the agent's <c>Date</c>, for a clock-skew guard).</summary>
    public Action<ConsulResponseMeta>? RenewalObserver { get; init; }

    /// <summary>
    /// Sees, once the session is created (or adopted) and after every successful renewal, how long it is known to count
    /// as live: the time left before <see cref="SessionRenewal.Lost"/> fires unless another renewal succeeds.
    /// </summary>
    public Action<TimeSpan>? DeadlineObserver { get; init; }

    internal SessionRequest Request() => new(Name, Ttl) { LockDelay = LockDelay, Behavior = Behavior, Node = Node };

    internal TimeSpan RenewEvery(TimeSpan ttl) => RenewInterval ?? ttl / 3;

    internal TimeSpan LostAfter(TimeSpan ttl)
    {
        var margin = LostMargin ?? (ttl / 10 > TimeSpan.FromSeconds(1) ? ttl / 10 : TimeSpan.FromSeconds(1));
        return ttl - margin > TimeSpan.Zero ? ttl - margin : ttl / 2;
    }
}
