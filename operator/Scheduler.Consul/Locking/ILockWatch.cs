namespace Dtask.Consul.Locking;

/// <summary>
/// Watches a held task lock: <see cref="Lost"/> fires when the lock is no longer the holder's, or when the holder's
/// session is lost. Whoever works under the lock must then stop. Dispose when the work is over.
/// <see cref="LockKeyWatch"/> is the Consul one.
/// </summary>
public interface ILockWatch : IAsyncDisposable
{
    /// <summary>Cancelled when the lock is lost.</summary>
    CancellationToken Lost { get; }

    /// <summary>True once <see cref="Lost"/> fired.</summary>
    bool IsLost { get; }

    /// <summary>Why the lock was lost, or null while it is held.</summary>
    string? LostReason { get; }

    /// <summary>True when the lock was lost because the holder's session was lost, not because of what the lock showed.</summary>
    bool LostWithSession { get; }
}
