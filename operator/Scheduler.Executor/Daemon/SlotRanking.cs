using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;

namespace Dtask.Executor.Daemon;

/// <summary>
/// The order in which the eligible live nodes try to claim one slot, so that about one of them writes per fire:
/// the first-ranked claims at the fire time, the k-th waits k·δ and claims only if the slot is still free.
/// </summary>
/// <remarks>
/// <para><c>placement: Any</c>: rendezvous (highest-random-weight) hashing of (task, slot, node): every node computes
/// the same order from the same node list, the order changes from slot to slot (load spreads), and a node joining or
/// leaving moves only the slots it wins or loses.</para>
/// <para><c>placement: RoundRobin</c>: the node that ran the task least recently first (never is least recent), ties by
/// the same hash: every eligible node takes a turn before one runs again.</para>
/// </remarks>
public static class SlotRanking
{
    /// <summary>The nodes by rendezvous hash, first-ranked first.</summary>
    public static IReadOnlyList<string> ByHash(TaskId task, long slot, IEnumerable<string> nodes)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(nodes);
        return [.. nodes.Distinct(StringComparer.Ordinal).OrderByDescending(n => Weight(task, slot, n)).ThenBy(n => n, StringComparer.Ordinal)];
    }

    /// <summary>The nodes by the slot each last ran the task (<paramref name="lastRan"/>; absent: never), oldest first; ties by hash.</summary>
    public static IReadOnlyList<string> ByLeastRecent(TaskId task, long slot, IEnumerable<string> nodes, IReadOnlyDictionary<string, long> lastRan)
    {
        ArgumentNullException.ThrowIfNull(lastRan);
        var byHash = ByHash(task, slot, nodes);
        return [.. byHash.Select((node, index) => (node, index))
            .OrderBy(p => lastRan.TryGetValue(p.node, out var s) ? s : long.MinValue)
            .ThenBy(p => p.index)
            .Select(p => p.node)];
    }

    /// <summary>The newest slot each node ran (any run that started: succeeded, failed, timed out, lost, abandoned).</summary>
    public static IReadOnlyDictionary<string, long> LastRan(IEnumerable<RunRecord> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var last = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var record in history.Where(r => !r.IsManual && r.State is not (RunState.Skipped or RunState.Missed)))
        {
            if (!last.TryGetValue(record.Node, out var slot) || record.Slot > slot)
            {
                last[record.Node] = record.Slot;
            }
        }

        return last;
    }

    private static ulong Weight(TaskId task, long slot, string node)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{task}\n{slot}\n{node}")), hash);
        return BinaryPrimitives.ReadUInt64BigEndian(hash);
    }
}
