using Dtask.Consul;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Consul.Txn;
using Dtask.Core.Model;
using Dtask.Core.State;

namespace Dtask.Executor.Claims;

/// <summary>What a <see cref="SlotMarker"/> write did.</summary>
public enum MarkStatus
{
    /// <summary>This call wrote the marker.</summary>
    Written,

    /// <summary>The slot has a history entry already (another executor recorded it, or it ran): nothing written.</summary>
    AlreadyRecorded,

    /// <summary>The run record holds this very slot (it is running or ran): it is never marked missed.</summary>
    HeldByRun,

    /// <summary>
    /// The run record holds a later slot: this one is at or before the task's last handled slot and gets no marker (it
    /// ran, or was recorded, and its history entry may have been trimmed since; or it was overtaken by the later one).
    /// </summary>
    Superseded,

    /// <summary>
    /// The run record changed after it was read to decide (a run finished, or a claim came in between): nothing was
    /// written; read again and decide again.
    /// </summary>
    RecordChanged,
}

/// <summary>
/// Records slots that did not run: <c>skipped</c> (a policy said no, e.g. <c>Forbid</c> with a run still going:
/// reason <c>still-running</c>) and <c>missed</c> (nobody could fire it before its deadline).
/// </summary>
/// <remarks>
/// <para>The idempotent marker of such a slot is its history entry <c>history/&lt;slot&gt;</c>, written with CAS index 0:
/// the first writer wins, so N executors that all notice the same slot record it once, and only the one whose write
/// succeeded notifies. A claim transaction checks that <c>history/&lt;slot&gt;</c> does not exist, so a slot with a
/// marker is never claimed afterwards.</para>
/// <para>A marker is written only while the run record is still at the ModifyIndex read when deciding (a
/// <c>check-index</c> in the marker's transaction): when a run finished or a claim came in between, nothing is written
/// and the caller decides again. Together with the claim's check, a slot is either claimed or marked, never both.</para>
/// <para>Skipped slots never touch the run record: it belongs to the run that is still going (its holder finishes it
/// with a CAS at its own index, which must not be disturbed).</para>
/// <para>Missed slots: a slot the run record holds (running or finished) is never marked missed. When the record is
/// final and at an older slot, the marker also advances the record's slot in the same transaction (a CAS at the index
/// read), so schedulers that read the record's slot as "last handled" do not reconsider the missed slot. When the
/// record is <c>running</c> an older slot, only the marker is written (checked against the record's index). When it is
/// at a later slot, the slot is at or before the task's last handled slot, and a slot that ran may have had its history
/// entry trimmed since, so a marker there could say <c>missed</c> of a slot that ran: it is written only inside the
/// window that history still keeps (after the oldest kept slot entry, checked in the same transaction, or while fewer
/// entries than the task's history limit exist, so none was trimmed), where a missing entry means the slot never ran;
/// before that window nothing is written (<see cref="MarkStatus.Superseded"/>).</para>
/// </remarks>
public sealed class SlotMarker(RunStateStore store, TimeProvider? time = null)
{
    private const int MaxRounds = 8;
    private readonly TimeProvider time = time ?? TimeProvider.System;

    /// <summary>
    /// Records <paramref name="slot"/> as skipped, provided the run record is still at <paramref name="runIndex"/> (the
    /// ModifyIndex read when deciding to skip; 0: the record did not exist). An existing marker is noticed with a read
    /// first, so the executors that come after the first cost no write.
    /// </summary>
    /// <returns><see cref="MarkStatus.Written"/>, <see cref="MarkStatus.AlreadyRecorded"/>, or <see cref="MarkStatus.RecordChanged"/> (decide again).</returns>
    public async Task<MarkStatus> RecordSkippedAsync(TaskId task, long slot, string node, string reason, ulong runIndex, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var key = store.Layout.HistoryKey(task.Namespace, task.Name, slot);
        if ((await store.Client.Kv.GetAsync(key, cancellationToken: cancellationToken).ConfigureAwait(false)).Value is not null)
        {
            return MarkStatus.AlreadyRecorded; // A read instead of a write that would fail.
        }

        var record = NotRun(slot, node, RunState.Skipped, reason);
        var runKey = store.Layout.RunKey(task.Namespace, task.Name);
        var result = (await store.Client.Txn.ExecuteAsync([RunAt(runKey, runIndex), TxnOp.Cas(key, RunStateStore.Encode(record), 0)],
            cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        return result.Committed ? MarkStatus.Written
            : result.Errors.Any(e => e.OperationIndex == 0) ? MarkStatus.RecordChanged
            : MarkStatus.AlreadyRecorded;
    }

    /// <summary>Records <paramref name="slot"/> as missed (see the remarks).</summary>
    /// <returns><see cref="MarkStatus.Written"/>, <see cref="MarkStatus.AlreadyRecorded"/>, <see cref="MarkStatus.HeldByRun"/> or
    /// <see cref="MarkStatus.Superseded"/>.</returns>
    /// <param name="task">The task.</param>
    /// <param name="slot">The slot that did not run.</param>
    /// <param name="node">This executor.</param>
    /// <param name="reason">Why (kebab-case).</param>
    /// <param name="historyLimit">The task's history limit: while fewer slot entries are kept, none was trimmed yet.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public async Task<MarkStatus> RecordMissedAsync(TaskId task, long slot, string node, string reason, int historyLimit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var record = NotRun(slot, node, RunState.Missed, reason);
        var runKey = store.Layout.RunKey(task.Namespace, task.Name);
        var historyKey = store.Layout.HistoryKey(task.Namespace, task.Name, slot);
        var value = RunStateStore.Encode(record);
        for (var round = 0; ; round++)
        {
            var stored = await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false);
            TxnOp[] operations;
            switch (stored.Record)
            {
                case { State: RunState.Missed or RunState.Skipped } current when current.Slot == slot:
                    return MarkStatus.AlreadyRecorded;
                case { } current when current.Slot == slot:
                    return MarkStatus.HeldByRun;
                case { } current when current.Slot > slot:
                    // At or before the last handled slot: a slot that ran may have had its history entry trimmed since,
                    // so it is marked only inside the window history still keeps (after its oldest entry, or while
                    // nothing was trimmed yet), where an absent entry means the slot never ran.
                    var kept = await store.HistorySlotsAsync(task, cancellationToken).ConfigureAwait(false);
                    if (kept.Count >= historyLimit && (kept.Count == 0 || slot <= kept[0]))
                    {
                        return MarkStatus.Superseded;
                    }

                    if (kept.Count == 0)
                    {
                        operations = [TxnOp.Cas(historyKey, value, 0), TxnOp.CheckIndex(runKey, stored.ModifyIndex)];
                        break;
                    }

                    // The oldest kept entry must still be there when the marker lands (not trimmed meanwhile).
                    var oldestKey = store.Layout.HistoryKey(task.Namespace, task.Name, kept[0]);
                    var oldest = (await store.Client.Kv.GetAsync(oldestKey, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
                    if (oldest is null)
                    {
                        continue; // Trimmed while we looked: decide again.
                    }

                    operations = [TxnOp.Cas(historyKey, value, 0), TxnOp.CheckIndex(oldestKey, oldest.ModifyIndex)];
                    break;
                case { IsRunning: true }:
                    // An older run goes on: the marker alone, while the record is still that run.
                    operations = [TxnOp.Cas(historyKey, value, 0), TxnOp.CheckIndex(runKey, stored.ModifyIndex)];
                    break;
                default:
                    // Final and older, or absent: the marker, and the record advanced to this slot. The record it replaces
                    // passes on where the slots not yet looked at begin (RunRecord.PreviousSlot).
                    var advanced = RunStateStore.Encode(record with { PreviousSlot = RunRecords.GapFrom(stored.Record) });
                    operations = [TxnOp.Cas(historyKey, value, 0), TxnOp.Cas(runKey, advanced, stored.ModifyIndex)];
                    break;
            }

            var result = (await store.Client.Txn.ExecuteAsync(operations, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
            if (result.Committed)
            {
                return MarkStatus.Written;
            }

            if (result.Errors.Any(e => e.OperationIndex == 0))
            {
                return MarkStatus.AlreadyRecorded; // Someone recorded the slot first.
            }

            if (round >= MaxRounds)
            {
                throw new ConsulConflictException(runKey, $"the run record of {task} kept changing while recording slot {slot} missed");
            }

            // The record changed since it was read (a run finished, a claim came in): read again and decide again.
        }
    }

    /// <summary>Writes <paramref name="record"/> as the history entry of its slot unless one exists; true when written.</summary>
    public async Task<bool> TryWriteHistoryAsync(TaskId task, RunRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(record);
        var key = store.Layout.HistoryKeyOf(task.Namespace, task.Name, record);
        return (await store.Client.Kv.PutAsync(key, RunStateStore.Encode(record), new KvPutOptions { Cas = 0 }, cancellationToken).ConfigureAwait(false)).Value;
    }

    /// <summary>Fails unless the run record is still at <paramref name="index"/> (0: still absent).</summary>
    private static TxnOp RunAt(string runKey, ulong index) => index == 0 ? TxnOp.CheckNotExists(runKey) : TxnOp.CheckIndex(runKey, index);

    private RunRecord NotRun(long slot, string node, RunState state, string reason) => RunRecords.NotRun(slot, node, state, reason, time.GetUtcNow());
}
