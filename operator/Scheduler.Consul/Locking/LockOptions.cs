using Dtask.Consul.Sessions;

namespace Dtask.Consul.Locking;

/// <summary>How to take and hold a <see cref="ConsulLock"/>.</summary>
/// <param name="Key">The lock key, e.g. <c>dtask/state/default/backup/lock</c>.</param>
public sealed record LockOptions(string Key)
{
    /// <summary>The value written with the lock (who holds it, for people reading KV).</summary>
    public ReadOnlyMemory<byte> Value { get; init; }

    /// <summary>
    /// An existing session to lock with. Its owner renews and destroys it; the lock only watches the key.
    /// When null the lock creates, renews and destroys a session of its own.
    /// </summary>
    public string? SessionId { get; init; }

    /// <summary>The name of the lock's own session.</summary>
    public string SessionName { get; init; } = "dtask lock";

    /// <summary>The TTL of the lock's own session (at least 10 s).</summary>
    public TimeSpan SessionTtl { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>The lock-delay of the lock's own session.</summary>
    public TimeSpan LockDelay { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Release (default) or delete the key when the session is invalidated.</summary>
    public SessionBehavior Behavior { get; init; } = SessionBehavior.Release;

    /// <summary>The Consul catalog node to create the lock's own session on; the answering agent's node when null.</summary>
    public string? SessionNode { get; init; }

    /// <summary>The renewal period; a third of the TTL when null.</summary>
    public TimeSpan? RenewInterval { get; init; }

    /// <summary>
    /// The lock counts as lost when no renewal has succeeded for the TTL minus this margin; a tenth of the TTL
    /// (at least 1 s) when null.
    /// </summary>
    public TimeSpan? LostMargin { get; init; }

    /// <summary>The wait time of each blocking query on the lock key.</summary>
    public TimeSpan MonitorWaitTime { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long <see cref="ConsulLock.AcquireAsync"/> waits before trying again when the key is free but
    /// the acquire was refused (lock-delay in force).</summary>
    public TimeSpan RetryInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    internal SessionRenewalOptions SessionRenewal() => new()
    {
        Name = SessionName,
        Ttl = SessionTtl,
        LockDelay = LockDelay,
        Behavior = Behavior,
        Node = SessionNode,
        RenewInterval = RenewInterval,
        LostMargin = LostMargin,
    };
}
