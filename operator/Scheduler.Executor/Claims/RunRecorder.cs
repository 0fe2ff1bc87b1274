using Dtask.Consul;
using Dtask.Consul.Errors;
using Dtask.Consul.Txn;
using Dtask.Core.State;

namespace Dtask.Executor.Claims;

/// <summary>How a <see cref="RunRecorder.FinishAsync"/> ended.</summary>
public enum FinishStatus
{
    /// <summary>The run record and the history entry hold the final state, the lock is released.</summary>
    Recorded,

    /// <summary>
    /// The executor no longer held the lock: the run record was left alone (it may belong to a newer claim), and the
    /// final record went only into <c>history/&lt;slot&gt;</c>, if no entry existed there.
    /// </summary>
    LockLost,
}

/// <summary>The answer of <see cref="RunRecorder.FinishAsync"/>.</summary>
/// <param name="Status">Recorded, or the lock was lost.</param>
/// <param name="HistoryWritten">Whether the history entry holds this run's final record.</param>
/// <param name="Trimmed">How many old history entries were deleted.</param>
public sealed record FinishResult(FinishStatus Status, bool HistoryWritten, int Trimmed);

/// <summary>
/// Writes a claimed run's record while the executor holds the lock: a new attempt (<see cref="StartAttemptAsync"/>)
/// and the end (<see cref="FinishAsync"/>), each one transaction guarded by <c>check-session</c> on the lock key and a
/// CAS at the record's last index, so nothing is written over a newer claim.
/// </summary>
public sealed class RunRecorder(RunStateStore store, TimeProvider? time = null)
{
    private const int MaxTrimPerFinish = 48;
    private readonly TimeProvider time = time ?? TimeProvider.System;

    /// <summary>
    /// Records attempt <paramref name="attempt"/> of a claimed slot (a retry): the same record, lock kept, with the new
    /// attempt number and start. Returns the updated claim (same fence), or null when the lock is no longer held.
    /// </summary>
    public async Task<SlotClaim?> StartAttemptAsync(SlotClaim claim, int attempt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(claim);
        var record = claim.Record with
        {
            Attempt = attempt,
            StartedAt = time.GetUtcNow(),
            Fence = claim.Fence.AsLong,
            State = RunState.Running,
            ExitCode = null,
            Reason = null,
            FinishedAt = null,
        };
        var runKey = store.Layout.RunKey(claim.Task.Namespace, claim.Task.Name);
        var lockKey = store.Layout.LockKey(claim.Task.Namespace, claim.Task.Name);
        var result = (await store.Client.Txn.ExecuteAsync([TxnOp.CheckSession(lockKey, claim.SessionId), TxnOp.Cas(runKey, RunStateStore.Encode(record), claim.RecordIndex)],
            cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        return result.Committed ? claim with { Record = record, RecordIndex = result.Results.Last(r => r.Key == runKey).ModifyIndex } : null;
    }

    /// <summary>
    /// Finishes a claimed run in ONE transaction: <c>check-session</c> on the lock key, <c>cas</c> of the run record at
    /// the claim's index to <paramref name="final"/>, <c>set</c> of <c>history/&lt;slot&gt;</c>, <c>delete</c> of the
    /// oldest history entries beyond <paramref name="historyLimit"/>, <c>unlock</c>. When the check fails (the lock was
    /// lost), the run record is not touched and the history entry is written only if none exists. A timeout or 5xx is
    /// answered by re-reading: if the stored record is this run's final one, the finish had committed; otherwise it is
    /// sent again (its CAS makes a repeat harmless).
    /// </summary>
    public async Task<FinishResult> FinishAsync(SlotClaim claim, RunRecord final, int historyLimit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(claim);
        ArgumentNullException.ThrowIfNull(final);
        var task = claim.Task;
        var runKey = store.Layout.RunKey(task.Namespace, task.Name);
        var lockKey = store.Layout.LockKey(task.Namespace, task.Name);
        var historyKey = store.Layout.HistoryKey(task.Namespace, task.Name, claim.Slot);
        var value = RunStateStore.Encode(final);

        var trim = await TrimCandidatesAsync(task, claim.Slot, historyLimit, cancellationToken).ConfigureAwait(false);
        List<TxnOp> operations =
        [
            TxnOp.CheckSession(lockKey, claim.SessionId),
            TxnOp.Cas(runKey, value, claim.RecordIndex),
            TxnOp.Set(historyKey, value),
            TxnOp.Unlock(lockKey, ReadOnlyMemory<byte>.Empty, claim.SessionId),
            .. trim.Select(slot => TxnOp.Delete(store.Layout.HistoryKey(task.Namespace, task.Name, slot))),
        ];

        for (var attempt = 1; ; attempt++)
        {
            TxnResult result;
            try
            {
                result = (await store.Client.Txn.ExecuteAsync(operations, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
            }
            catch (Exception e) when (SlotClaimer.IsUnknownOutcome(e, cancellationToken) && attempt < 4)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt), time, cancellationToken).ConfigureAwait(false);
                var stored = await ReadQuietlyAsync(task, cancellationToken).ConfigureAwait(false);
                if (stored?.Record is { } now && now.RunId == final.RunId && now.IsFinal)
                {
                    return new FinishResult(FinishStatus.Recorded, true, trim.Count);
                }

                continue;
            }

            if (result.Committed)
            {
                return new FinishResult(FinishStatus.Recorded, true, trim.Count);
            }

            // The lock is gone (or the record was changed under it): leave the run record alone, keep our account
            // of the run in history unless someone recorded the slot already.
            var written = await new SlotMarker(store, time).TryWriteHistoryAsync(task, final, cancellationToken).ConfigureAwait(false);
            if (!result.Errors.Any(e => e.OperationIndex == 0))
            {
                await ReleaseQuietlyAsync(lockKey, claim.SessionId, cancellationToken).ConfigureAwait(false);
            }

            return new FinishResult(FinishStatus.LockLost, written, 0);
        }
    }

    private async Task<IReadOnlyList<long>> TrimCandidatesAsync(TaskId task, long slot, int historyLimit, CancellationToken cancellationToken)
    {
        var limit = Math.Max(1, historyLimit);
        try
        {
            var slots = (await store.HistorySlotsAsync(task, cancellationToken).ConfigureAwait(false)).Where(s => s != slot).ToList();
            // Keep the newest (limit - 1) others: with this run's entry, the limit.
            var excess = slots.Count - (limit - 1);
            return excess <= 0 ? [] : [.. slots.Take(Math.Min(excess, MaxTrimPerFinish))];
        }
        catch (ConsulException)
        {
            return []; // Trimming is best effort; the next finish catches up.
        }
    }

    private async Task<StoredRun?> ReadQuietlyAsync(TaskId task, CancellationToken cancellationToken)
    {
        try
        {
            return await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false);
        }
        catch (ConsulException)
        {
            return null;
        }
    }

    private async Task ReleaseQuietlyAsync(string lockKey, string sessionId, CancellationToken cancellationToken)
    {
        try
        {
            await store.Client.Kv.PutAsync(lockKey, ReadOnlyMemory<byte>.Empty, new Consul.Kv.KvPutOptions { Release = sessionId }, cancellationToken).ConfigureAwait(false);
        }
        catch (ConsulException)
        {
            // The session's end releases it anyway.
        }
    }
}
