using Dtask.Consul;
using Dtask.Consul.Kv;
using Dtask.Consul.Txn;
using Dtask.Core.State;

namespace Dtask.Executor.Claims;

/// <summary>
/// Records slots that did not run: <c>skipped</c> (a policy said no, e.g. <c>Forbid</c> with a run still going:
/// reason <c>still-running</c>) and <c>missed</c> (nobody could fire it before its deadline).
/// </summary>
/// <remarks>
/// <para>The idempotent marker of such a slot is its history entry <c>history/&lt;slot&gt;</c>, written with CAS index 0:
/// the first writer wins, so N executors that all notice the same slot record it once, and only the one whose write
/// succeeded notifies.</para>
/// <para>Skipped slots never touch the run record: it belongs to the run that is still going (its holder finishes it
/// with a CAS at its own index, which must not be disturbed).</para>
/// <para>Missed slots also advance the run record's slot when the record is final and older, in the same
/// transaction as the marker (a CAS at the index read, plus the marker with CAS 0), so schedulers that read the
/// record's slot as "last handled" do not reconsider the missed slot, and a later claim of that slot sees "already
/// claimed". When the record is <c>running</c> (a run goes on) or already at a later slot, only the marker is
/// written; reconsidering the slot later is harmless because the marker cannot be written twice.</para>
/// </remarks>
public sealed class SlotMarker(RunStateStore store, TimeProvider? time = null)
{
    private readonly TimeProvider time = time ?? TimeProvider.System;

    /// <summary>
    /// Records <paramref name="slot"/> as skipped; true when this call wrote the marker (false: already recorded). An
    /// existing marker is noticed with a read first, so the executors that come after the first cost no write.
    /// </summary>
    public async Task<bool> RecordSkippedAsync(TaskId task, long slot, string node, string reason, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var key = store.Layout.HistoryKey(task.Namespace, task.Name, slot);
        if ((await store.Client.Kv.GetAsync(key, cancellationToken: cancellationToken).ConfigureAwait(false)).Value is not null)
        {
            return false; // Recorded already: a read instead of a write that would fail.
        }

        var record = NotRun(slot, node, RunState.Skipped, reason);
        return await TryWriteHistoryAsync(task, record, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Records <paramref name="slot"/> as missed (see the remarks); true when this call wrote the marker.</summary>
    public async Task<bool> RecordMissedAsync(TaskId task, long slot, string node, string reason, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var record = NotRun(slot, node, RunState.Missed, reason);
        var runKey = store.Layout.RunKey(task.Namespace, task.Name);
        var historyKey = store.Layout.HistoryKey(task.Namespace, task.Name, slot);
        var value = RunStateStore.Encode(record);
        for (var round = 0; round < 3; round++)
        {
            var stored = await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false);
            if (stored.Record is { } current && (current.IsRunning || current.Slot >= slot))
            {
                return await TryWriteHistoryAsync(task, record, cancellationToken).ConfigureAwait(false);
            }

            var result = (await store.Client.Txn.ExecuteAsync([TxnOp.Cas(historyKey, value, 0), TxnOp.Cas(runKey, value, stored.ModifyIndex)],
                cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
            if (result.Committed)
            {
                return true;
            }

            if (result.Errors.Any(e => e.OperationIndex == 0))
            {
                return false; // Someone recorded the slot first.
            }
        }

        return await TryWriteHistoryAsync(task, record, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes <paramref name="record"/> as the history entry of its slot unless one exists; true when written.</summary>
    public async Task<bool> TryWriteHistoryAsync(TaskId task, RunRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(record);
        var key = store.Layout.HistoryKey(task.Namespace, task.Name, record.Slot);
        return (await store.Client.Kv.PutAsync(key, RunStateStore.Encode(record), new KvPutOptions { Cas = 0 }, cancellationToken).ConfigureAwait(false)).Value;
    }

    private RunRecord NotRun(long slot, string node, RunState state, string reason) => new()
    {
        Slot = slot,
        RunId = SlotClaimer.NewRunId(slot),
        Node = node,
        State = state,
        Reason = reason,
        StartedAt = time.GetUtcNow(),
        FinishedAt = time.GetUtcNow(),
        Attempt = 0,
    };
}
