using Dtask.Consul.Kv;

namespace Dtask.Executor.Daemon;

/// <summary>
/// Tells a watched folder's listing that really changed from one that came back the same: Consul may answer a blocking
/// query with a higher index and the same keys (it wakes every watcher of a folder whose index moved for a reason that is
/// not in the folder), and such an answer is not processed again. The listing's fingerprint is its key count and
/// highest ModifyIndex: any write, creation or deletion under the folder changes one of them.
/// </summary>
public sealed class ListingChange
{
    private (int Count, ulong Highest)? last;

    /// <summary>True the first time and whenever <paramref name="pairs"/> differ from the last listing seen.</summary>
    public bool IsNew(IReadOnlyList<KvPair> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        var fingerprint = (pairs.Count, pairs.Count == 0 ? 0UL : pairs.Max(p => p.ModifyIndex));
        if (last == fingerprint)
        {
            return false;
        }

        last = fingerprint;
        return true;
    }
}
