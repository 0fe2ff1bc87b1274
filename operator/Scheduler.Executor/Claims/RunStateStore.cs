using System.Globalization;
using System.Text;
using Dtask.Consul;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Core.Model;
using Dtask.Core.State;

namespace Dtask.Executor.Claims;

/// <summary>A task's run record as read, with the ModifyIndex to CAS against (0: the key does not exist).</summary>
/// <param name="Record">The record; null when the key is absent or does not hold a run record.</param>
/// <param name="ModifyIndex">The key's ModifyIndex; 0 when it does not exist.</param>
public sealed record StoredRun(RunRecord? Record, ulong ModifyIndex);

/// <summary>Reads a task's run state from KV (<see cref="KvLayout"/>): the run record, the lock key, the history.</summary>
public sealed class RunStateStore(ConsulClient client, KvLayout layout)
{
    /// <summary>The client.</summary>
    public ConsulClient Client { get; } = client ?? throw new ArgumentNullException(nameof(client));

    /// <summary>The layout.</summary>
    public KvLayout Layout { get; } = layout ?? throw new ArgumentNullException(nameof(layout));

    /// <summary>The run record, read consistently (linearizable), with its ModifyIndex.</summary>
    public async Task<StoredRun> ReadRunAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var pair = (await Client.Kv.GetAsync(Layout.RunKey(task.Namespace, task.Name), QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
        return pair is null ? new StoredRun(null, 0) : new StoredRun(Decode(pair.Value), pair.ModifyIndex);
    }

    /// <summary>The lock key, read consistently; null when it does not exist.</summary>
    public async Task<KvPair?> ReadLockAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        return (await Client.Kv.GetAsync(Layout.LockKey(task.Namespace, task.Name), QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
    }

    /// <summary>The slots that have a history entry, oldest first.</summary>
    public async Task<IReadOnlyList<long>> HistorySlotsAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var prefix = Layout.HistoryPrefix(task.Namespace, task.Name);
        var keys = (await Client.Kv.KeysAsync(prefix, "/", cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        return [.. keys.Select(k => long.TryParse(k.AsSpan(prefix.Length), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var slot) ? slot : (long?)null)
            .OfType<long>().Order()];
    }

    /// <summary>The history entries that hold run records (manual runs included), newest first (<see cref="RunRecord.OrderKey"/>).</summary>
    public async Task<IReadOnlyList<RunRecord>> ReadHistoryAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var pairs = (await Client.Kv.ListAsync(Layout.HistoryPrefix(task.Namespace, task.Name), cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        return [.. pairs.Select(p => Decode(p.Value)).OfType<RunRecord>().OrderByDescending(r => r.OrderKey)];
    }

    /// <summary>The UTF-8 JSON of a record, as stored.</summary>
    public static ReadOnlyMemory<byte> Encode(RunRecord record) => Encoding.UTF8.GetBytes(StateJson.Serialize(record));

    /// <summary>A stored value as a run record; null when it is not one.</summary>
    public static RunRecord? Decode(ReadOnlyMemory<byte> value) =>
        value.IsEmpty ? null : StateJson.TryDeserialize<RunRecord>(Encoding.UTF8.GetString(value.Span));
}
