using Dtask.Consul.Errors;
using Dtask.Consul.Kv;

namespace Dtask.Consul.Txn;

/// <summary>Whether a transaction longer than Consul's limit may be sent as several transactions.</summary>
public enum TxnAtomicity
{
    /// <summary>All operations commit together or none does; more than <see cref="ConsulTxn.MaxOperations"/> is refused.</summary>
    RequireAtomic,

    /// <summary>
    /// Split into batches of at most <see cref="ConsulTxn.MaxOperations"/>, sent one after another. Each batch is
    /// atomic; the whole is NOT: when a batch rolls back, the batches before it stay committed and later ones are
    /// not sent.
    /// </summary>
    AllowSplit,
}

/// <summary>An operation that made a transaction roll back.</summary>
/// <param name="OperationIndex">Its position in the list passed in (across batches).</param>
/// <param name="Operation">The operation itself.</param>
/// <param name="Reason">The server's reason, e.g. <c>failed to set key "x", index is stale</c>.</param>
public sealed record TxnOpError(int OperationIndex, TxnOp? Operation, string Reason)
{
    /// <inheritdoc />
    public override string ToString() => $"operation {OperationIndex} ({Operation?.ToString() ?? "?"}): {Reason}";
}

/// <summary>The outcome of a transaction.</summary>
/// <param name="Committed">True when every operation (every batch) committed.</param>
/// <param name="Results">The keys returned by the operations that return one (get, get-tree, set, cas, lock…), in order.</param>
/// <param name="Errors">Why it rolled back; empty when committed.</param>
/// <param name="BatchesCommitted">How many batches committed (1 for an unsplit transaction that committed).</param>
public sealed record TxnResult(bool Committed, IReadOnlyList<KvPair> Results, IReadOnlyList<TxnOpError> Errors, int BatchesCommitted)
{
    /// <summary>Throws <see cref="ConsulTxnRolledBackException"/> naming the failing operations unless committed.</summary>
    public TxnResult ThrowIfRolledBack() => Committed ? this : throw new ConsulTxnRolledBackException(Errors);
}

/// <summary>A transaction rolled back: a check failed, a CAS index was stale, or a lock was busy.</summary>
public sealed class ConsulTxnRolledBackException(IReadOnlyList<TxnOpError> errors)
    : ConsulConflictException("PUT /v1/txn", "transaction rolled back: " + string.Join("; ", errors))
{
    /// <summary>The failing operations with the server's reasons.</summary>
    public IReadOnlyList<TxnOpError> Errors { get; } = errors;
}
