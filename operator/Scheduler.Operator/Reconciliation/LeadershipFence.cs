using Dtask.Consul;
using Dtask.Consul.Txn;

namespace Dtask.Operator.Reconciliation;

/// <summary>
/// The only way the reconciler writes to Consul: every transaction it sends goes through a fence, which lets it
/// through only while this replica leads its source. The directory source's fence adds a <c>check-session</c> on the
/// leader lock to the transaction itself, so Consul refuses a deposed leader's write atomically; the Kubernetes
/// source's fence stops writing before its Lease can be taken over; <c>dtask apply</c> has no leader and writes
/// unfenced.
/// </summary>
public interface ILeadershipFence
{
    /// <summary>How many of the caller's operations one transaction may hold (Consul's limit minus the fence's own).</summary>
    int MaxOperations { get; }

    /// <summary>
    /// Runs <paramref name="operations"/> as one atomic transaction while this replica leads. A rollback caused by the
    /// caller's own operations is returned (its error indexes are the caller's); a refusal because of leadership is
    /// thrown.
    /// </summary>
    /// <exception cref="LeadershipLostException">This replica no longer leads (or cannot be sure it still does):
    /// nothing was written by this call.</exception>
    Task<TxnResult> ExecuteAsync(IReadOnlyList<TxnOp> operations, CancellationToken cancellationToken);
}

/// <summary>A write was refused because this replica no longer leads its source; nothing of it was committed.</summary>
public sealed class LeadershipLostException : Exception
{
    /// <summary>Creates the exception.</summary>
    public LeadershipLostException(string reason)
        : base("lost leadership: " + reason) => Reason = reason;

    /// <summary>Creates the exception with its cause.</summary>
    public LeadershipLostException(string reason, Exception inner)
        : base("lost leadership: " + reason, inner) => Reason = reason;

    /// <summary>Why leadership is considered lost, for people.</summary>
    public string Reason { get; }
}

/// <summary>No fence: for writers that have no leader (<c>dtask apply</c>, <c>dtask delete</c>).</summary>
public sealed class NoLeadershipFence(ConsulClient client) : ILeadershipFence
{
    private readonly ConsulClient client = client ?? throw new ArgumentNullException(nameof(client));

    /// <inheritdoc />
    public int MaxOperations => ConsulTxn.MaxOperations;

    /// <inheritdoc />
    public async Task<TxnResult> ExecuteAsync(IReadOnlyList<TxnOp> operations, CancellationToken cancellationToken) =>
        (await client.Txn.ExecuteAsync(operations, TxnAtomicity.RequireAtomic, cancellationToken).ConfigureAwait(false)).Value;
}

/// <summary>
/// The fence of a source led through a Consul lock: every transaction starts with a <c>check-session</c> of the lock
/// key with the session this replica took it with, so Consul commits the writes only if that session still holds the
/// lock when it applies them — however long this process was paused or its request delayed. Between terms (before
/// <see cref="Hold"/>, after <see cref="Release"/>) every write is refused.
/// </summary>
public sealed class ConsulLockFence : ILeadershipFence
{
    private readonly ConsulClient client;
    private string? session;

    /// <summary>Creates the fence of <paramref name="lockKey"/>.</summary>
    public ConsulLockFence(ConsulClient client, string lockKey)
    {
        this.client = client ?? throw new ArgumentNullException(nameof(client));
        ArgumentException.ThrowIfNullOrEmpty(lockKey);
        LockKey = lockKey;
    }

    /// <summary>The leader lock key.</summary>
    public string LockKey { get; }

    /// <summary>The session writes are fenced on; null between terms.</summary>
    public string? Session => Volatile.Read(ref session);

    /// <inheritdoc />
    public int MaxOperations => ConsulTxn.MaxOperations - 1;

    /// <summary>Starts a term: writes are checked against <paramref name="sessionId"/>, the session that took the lock.</summary>
    public void Hold(string sessionId)
    {
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        Volatile.Write(ref session, sessionId);
    }

    /// <summary>Ends the term: every write is refused until the next <see cref="Hold"/>.</summary>
    public void Release() => Volatile.Write(ref session, null);

    /// <inheritdoc />
    public async Task<TxnResult> ExecuteAsync(IReadOnlyList<TxnOp> operations, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(operations);
        var held = Session ?? throw new LeadershipLostException($"this replica does not hold the lock {LockKey}");
        if (operations.Count > MaxOperations)
        {
            throw new ArgumentException($"a fenced transaction holds at most {MaxOperations} operations", nameof(operations));
        }

        var guarded = new List<TxnOp>(operations.Count + 1) { TxnOp.CheckSession(LockKey, held) };
        guarded.AddRange(operations);
        var result = (await client.Txn.ExecuteAsync(guarded, TxnAtomicity.RequireAtomic, cancellationToken).ConfigureAwait(false)).Value;
        var results = result.Results.Count > 0 && result.Results[0].Key == LockKey ? result.Results.Skip(1).ToList() : result.Results;
        if (result.Committed)
        {
            return result with { Results = results };
        }

        if (result.Errors.FirstOrDefault(e => e.OperationIndex == 0) is { } refused)
        {
            throw new LeadershipLostException($"Consul refused the write: session {held} no longer holds the lock {LockKey} ({refused.Reason})");
        }

        return result with
        {
            Results = results,
            Errors = [.. result.Errors.Select(e => e with { OperationIndex = e.OperationIndex - 1 })],
        };
    }
}
