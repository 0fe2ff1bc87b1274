using Dtask.Consul;
using Dtask.Consul.Errors;
using Dtask.Consul.Txn;
using Dtask.Core.Durations;
using Dtask.Core.Model;
using Dtask.Core.Scheduling;
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

    /// <summary>
    /// Consul could not be reached (or kept failing) until the executor's session was lost: nothing was written. The
    /// session's end frees the lock, and the next claimer records the run <c>abandoned</c>.
    /// </summary>
    Unrecorded,

    /// <summary>
    /// Consul refused the finish for a reason that retrying cannot fix (permission denied, a request too large…). The
    /// lock was released so the task is not blocked; the final record went into <c>history/&lt;slot&gt;</c> if it could
    /// be written there, and the run record still says <c>running</c>, for the next claimer to record <c>abandoned</c>.
    /// </summary>
    Refused,
}

/// <summary>The answer of <see cref="RunRecorder.FinishAsync"/>.</summary>
/// <param name="Status">Recorded, the lock was lost, or the record could not be written.</param>
/// <param name="HistoryWritten">Whether the history entry holds this run's final record.</param>
/// <param name="Trimmed">How many old history entries were deleted.</param>
public sealed record FinishResult(FinishStatus Status, bool HistoryWritten, int Trimmed)
{
    /// <summary>The last Consul failure, for <see cref="FinishStatus.Unrecorded"/> and <see cref="FinishStatus.Refused"/>.</summary>
    public string? Problem { get; init; }
}

/// <summary>
/// Writes a claimed run's record while the executor holds the lock: a new attempt (<see cref="StartAttemptAsync"/>)
/// and the end (<see cref="FinishAsync"/>), each one transaction guarded by <c>check-session</c> on the lock key and a
/// CAS at the record's last index, so nothing is written over a newer claim.
/// </summary>
/// <remarks>
/// A claimed run must end with its record written or its lock freed, or the task stays blocked. So both writes are
/// retried, with a backoff from <see cref="RetryMin"/> doubling up to <see cref="RetryMax"/>, for as long as Consul fails
/// transiently (unreachable, 5xx, no leader, 429) and the lock is held: until the <c>lockLost</c> token given to each
/// call fires (the executor's <see cref="Consul.Locking.LockKeyWatch"/>, which fires with the session's loss too). Once
/// it fired, one more attempt is made and then the write is given up: the lock is free or about to be (the session is
/// gone), and the next claimer records the run <c>abandoned</c>, which is then the truth.
/// </remarks>
/// <param name="store">Where the run records and locks are.</param>
/// <param name="time">The clock.</param>
/// <param name="finishes">When set, finish transactions go through it (the finishes of runs that end together share
/// requests, each still all-or-nothing).</param>
public sealed class RunRecorder(RunStateStore store, TimeProvider? time = null, TxnBatcher? finishes = null)
{
    private const int MaxTrimPerFinish = 48;
    private readonly TimeProvider time = time ?? TimeProvider.System;

    /// <summary>The first wait after a transient failure.</summary>
    public TimeSpan RetryMin { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest wait between two attempts.</summary>
    public TimeSpan RetryMax { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Records attempt <paramref name="attempt"/> of a claimed slot (a retry): the same record, lock kept, with the new
    /// attempt number and start. Returns the updated claim (same fence), or null when the lock is no longer held
    /// (including when Consul could not be reached before <paramref name="lockLost"/> fired). Transient failures are
    /// retried while the lock is held (see the class remarks); an unknown outcome is settled by re-reading the record.
    /// </summary>
    /// <exception cref="ConsulException">Consul refused the write for a reason retrying cannot fix: no retry is recorded.</exception>
    public async Task<SlotClaim?> StartAttemptAsync(SlotClaim claim, int attempt, CancellationToken lockLost, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(claim);
        var record = RunRecords.NextAttempt(claim.Record, attempt, claim.Fence.AsLong, time.GetUtcNow());
        var runKey = store.Layout.RunKey(claim.Task.Namespace, claim.Task.Name);
        var lockKey = store.Layout.LockKey(claim.Task.Namespace, claim.Task.Name);
        TxnOp[] operations = [TxnOp.CheckSession(lockKey, claim.SessionId), TxnOp.Cas(runKey, RunStateStore.Encode(record), claim.RecordIndex)];
        var backoff = new Backoff(RetryMin, RetryMax);
        while (true)
        {
            try
            {
                var result = (await store.Client.Txn.ExecuteAsync(operations, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
                return result.Committed ? claim with { Record = record, RecordIndex = result.Results.Last(r => r.Key == runKey).ModifyIndex } : null;
            }
            catch (Exception e) when (SlotClaimer.IsUnknownOutcome(e, cancellationToken))
            {
                var wasLost = lockLost.IsCancellationRequested;
                if (!wasLost)
                {
                    await WaitAsync(backoff, lockLost, cancellationToken).ConfigureAwait(false);
                }

                var stored = await ReadQuietlyAsync(claim.Task, cancellationToken).ConfigureAwait(false);
                if (stored?.Record is { } now && now.RunId == claim.RunId && now.Attempt == attempt && now.IsRunning)
                {
                    return claim with { Record = now, RecordIndex = stored.ModifyIndex }; // The write had committed.
                }

                if (wasLost)
                {
                    return null; // The lock was lost and the last attempt failed too.
                }
            }
        }
    }

    /// <summary>
    /// Finishes a claimed run in ONE transaction: <c>check-session</c> on the lock key, <c>cas</c> of the run record at
    /// the claim's index to <paramref name="final"/>, <c>set</c> of <c>history/&lt;slot&gt;</c>, <c>delete</c> of the
    /// oldest history entries beyond <paramref name="historyLimit"/>, <c>unlock</c>. When the check fails (the lock was
    /// lost), the run record is not touched and the history entry is written only if none exists. A timeout or 5xx is
    /// answered by re-reading: if the stored record is this run's final one, the finish had committed; otherwise it is
    /// sent again (its CAS makes a repeat harmless) while the lock is held (see the class remarks), so a Consul outage
    /// shorter than the session's life ends with the run recorded. Never throws a <see cref="ConsulException"/>: the
    /// status says what became of the run.
    /// </summary>
    /// <param name="claim">The claim being finished.</param>
    /// <param name="final">The final record.</param>
    /// <param name="historyLimit">How many history entries to keep.</param>
    /// <param name="lockLost">Fires when the lock (or the session holding it) is lost: transient failures are retried until then.</param>
    /// <param name="cancellationToken">Cancels the Consul calls.</param>
    public async Task<FinishResult> FinishAsync(SlotClaim claim, RunRecord final, int historyLimit, CancellationToken lockLost, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(claim);
        ArgumentNullException.ThrowIfNull(final);
        var task = claim.Task;
        var runKey = store.Layout.RunKey(task.Namespace, task.Name);
        var lockKey = store.Layout.LockKey(task.Namespace, task.Name);
        var historyKey = store.Layout.HistoryKeyOf(task.Namespace, task.Name, final);
        final = final with { HistoryFrom = null, HistorySchedule = null };
        IReadOnlyList<string> trim;
        if (final.IsManual)
        {
            trim = await ManualTrimCandidatesAsync(task, historyKey, historyLimit, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var (slots, from) = KnownTrim(claim, historyLimit) ?? await ListedTrimAsync(task, claim, historyLimit, cancellationToken).ConfigureAwait(false);
            trim = [.. slots.Select(slot => store.Layout.HistoryKey(task.Namespace, task.Name, slot))];
            if (from is not null)
            {
                final = final with { HistoryFrom = from, HistorySchedule = Fingerprint(claim.Schedule!) };
            }
        }

        var value = RunStateStore.Encode(final);
        List<TxnOp> operations =
        [
            TxnOp.CheckSession(lockKey, claim.SessionId),
            TxnOp.Cas(runKey, value, claim.RecordIndex),
            TxnOp.Set(historyKey, value),
            TxnOp.Unlock(lockKey, ReadOnlyMemory<byte>.Empty, claim.SessionId),
            .. trim.Select(TxnOp.Delete),
        ];

        var backoff = new Backoff(RetryMin, RetryMax);
        var outcomeUnknown = false;
        var lastAttempt = false;
        while (true)
        {
            TxnResult result;
            try
            {
                result = finishes is not null && operations.Count <= ConsulTxn.MaxOperations
                    ? await finishes.ExecuteAsync(operations, cancellationToken).ConfigureAwait(false)
                    : (await store.Client.Txn.ExecuteAsync(operations, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
            }
            catch (Exception e) when (SlotClaimer.IsUnknownOutcome(e, cancellationToken))
            {
                outcomeUnknown = true;
                if (!lockLost.IsCancellationRequested)
                {
                    await WaitAsync(backoff, lockLost, cancellationToken).ConfigureAwait(false);
                }

                var stored = await ReadQuietlyAsync(task, cancellationToken).ConfigureAwait(false);
                if (stored?.Record is { } now && now.RunId == final.RunId && now.IsFinal)
                {
                    return new FinishResult(FinishStatus.Recorded, true, trim.Count);
                }

                if (lastAttempt)
                {
                    return new FinishResult(FinishStatus.Unrecorded, false, 0) { Problem = e.Message };
                }

                lastAttempt = lockLost.IsCancellationRequested; // Once the lock is lost, one more attempt and no more.
                continue;
            }
            catch (ConsulException e)
            {
                return await RefusedAsync(task, final, lockKey, claim.SessionId, e, cancellationToken).ConfigureAwait(false);
            }

            if (result.Committed)
            {
                return new FinishResult(FinishStatus.Recorded, true, trim.Count);
            }

            if (outcomeUnknown && await HistoryHoldsAsync(task, final, cancellationToken).ConfigureAwait(false))
            {
                // An earlier attempt whose answer was lost had committed; a newer claim has moved the run record on since.
                return new FinishResult(FinishStatus.Recorded, true, trim.Count);
            }

            // The lock is gone (or the record was changed under it): leave the run record alone, keep our account
            // of the run in history unless someone recorded the slot already.
            var written = await TryWriteHistoryQuietlyAsync(task, final, cancellationToken).ConfigureAwait(false);
            if (!result.Errors.Any(e => e.OperationIndex == 0))
            {
                await ReleaseQuietlyAsync(lockKey, claim.SessionId, cancellationToken).ConfigureAwait(false);
            }

            return new FinishResult(FinishStatus.LockLost, written, 0);
        }
    }

    /// <summary>Waits the next wait of <paramref name="backoff"/> (less when the lock is lost meanwhile).</summary>
    private async Task WaitAsync(Backoff backoff, CancellationToken lockLost, CancellationToken cancellationToken)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(lockLost, cancellationToken);
        try
        {
            await Task.Delay(backoff.Next(), time, either.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The lock was lost: one last attempt follows.
        }
    }

    /// <summary>
    /// The finish was refused for good: keep the run's account in history if possible, and release the lock so the
    /// task is not blocked (the next claimer records the run record <c>abandoned</c>).
    /// </summary>
    private async Task<FinishResult> RefusedAsync(TaskId task, RunRecord final, string lockKey, string sessionId, ConsulException problem, CancellationToken cancellationToken)
    {
        var written = await TryWriteHistoryQuietlyAsync(task, final, cancellationToken).ConfigureAwait(false);
        await ReleaseQuietlyAsync(lockKey, sessionId, cancellationToken).ConfigureAwait(false);
        return new FinishResult(FinishStatus.Refused, written, 0) { Problem = problem.Message };
    }

    private async Task<bool> HistoryHoldsAsync(TaskId task, RunRecord final, CancellationToken cancellationToken)
    {
        try
        {
            var pair = (await store.Client.Kv.GetAsync(store.Layout.HistoryKeyOf(task.Namespace, task.Name, final), Consul.Http.QueryOptions.ConsistentRead,
                cancellationToken).ConfigureAwait(false)).Value;
            return pair is not null && RunStateStore.Decode(pair.Value) is { } stored && stored.RunId == final.RunId && stored.IsFinal;
        }
        catch (ConsulException)
        {
            return false;
        }
    }

    private async Task<bool> TryWriteHistoryQuietlyAsync(TaskId task, RunRecord final, CancellationToken cancellationToken)
    {
        try
        {
            return await new SlotMarker(store, time).TryWriteHistoryAsync(task, final, cancellationToken).ConfigureAwait(false);
        }
        catch (ConsulException)
        {
            return false;
        }
    }

    /// <summary>
    /// The history entries to trim, known without listing them, and the oldest slot kept (the next finisher's
    /// <see cref="RunRecord.HistoryFrom"/>); null when they are not known this way. They are known when the run record this
    /// claim replaced said the slot history was exactly the limit of consecutive slots of this same schedule from
    /// <see cref="RunRecord.HistoryFrom"/> to its own slot, and this claim's slot comes right after it: then the slots
    /// from there to this one, less the limit, are the oldest entries, and nothing else is kept. Anything else (a gap, a
    /// marker, an abandoned run or a manual run before it, another schedule) lists the history; so does one finish in
    /// eight, chosen by the slot, so that an entry written out of turn (a holder that lost its lock recording its run
    /// long after) is trimmed within a few runs, as with a listing every time.
    /// </summary>
    internal static (IReadOnlyList<long> Slots, long? From)? KnownTrim(SlotClaim claim, int historyLimit)
    {
        var limit = Math.Max(1, historyLimit);
        if (claim.Schedule is not { } schedule || claim.Record.HistoryFrom is not { } from || claim.Record.HistorySchedule != Fingerprint(schedule)
            || claim.Record.PreviousSlot is not { } previous || ListsAnyway(claim.Slot))
        {
            return null;
        }

        var slot = DateTimeOffset.FromUnixTimeSeconds(claim.Slot);
        if (schedule.Previous(slot.AddTicks(-1)) is not { } before || before.ToUnixTimeSeconds() != previous || from > previous)
        {
            return null; // Not the slot right after the one the record held: something may lie between.
        }

        // The slots from `from` to this one: the entries kept, this run's included once it is written.
        var kept = new List<long> { from };
        var cursor = DateTimeOffset.FromUnixTimeSeconds(from);
        while (kept[^1] < claim.Slot && kept.Count <= limit + MaxTrimPerFinish)
        {
            if (schedule.Next(cursor) is not { } next)
            {
                return null;
            }

            kept.Add(next.ToUnixTimeSeconds());
            cursor = next;
        }

        if (kept[^1] != claim.Slot || kept.Count <= limit || kept.Count > limit + MaxTrimPerFinish)
        {
            return null;
        }

        var excess = kept.Count - limit;
        return (kept.Take(excess).ToList(), kept[excess]);
    }

    /// <summary>The history entries to trim from a listing, and the oldest slot kept when what is kept is exactly the
    /// limit of consecutive slots of the schedule ending at this claim's (<see cref="RunRecord.HistoryFrom"/>).</summary>
    private async Task<(IReadOnlyList<long> Slots, long? From)> ListedTrimAsync(TaskId task, SlotClaim claim, int historyLimit, CancellationToken cancellationToken)
    {
        var limit = Math.Max(1, historyLimit);
        try
        {
            var slots = (await store.HistorySlotsAsync(task, cancellationToken).ConfigureAwait(false)).Where(s => s != claim.Slot).ToList();
            // Keep the newest (limit - 1) others: with this run's entry, the limit.
            var excess = slots.Count - (limit - 1);
            var trimmed = excess <= 0 ? [] : slots.Take(Math.Min(excess, MaxTrimPerFinish)).ToList();
            var kept = slots.Skip(trimmed.Count).Append(claim.Slot).Order().ToList();
            return (trimmed, Consecutive(claim.Schedule, kept, limit, claim.Slot) ? kept[0] : null);
        }
        catch (ConsulException)
        {
            return ([], null); // Trimming is best effort; the next finish catches up.
        }
    }

    /// <summary>True when <paramref name="kept"/> is <paramref name="limit"/> consecutive slots of <paramref name="schedule"/> ending at <paramref name="last"/>.</summary>
    private static bool Consecutive(TaskSchedule? schedule, List<long> kept, int limit, long last)
    {
        if (schedule is null || kept.Count != limit || kept[^1] != last)
        {
            return false;
        }

        for (var i = 1; i < kept.Count; i++)
        {
            if (schedule.Next(DateTimeOffset.FromUnixTimeSeconds(kept[i - 1])) is not { } next || next.ToUnixTimeSeconds() != kept[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>One slot in eight (by a hash of its id) lists the history even when the entries to trim are known.</summary>
    private static bool ListsAnyway(long slot) => (((ulong)slot * 0x9E3779B97F4A7C15UL) >> 61) == 0;

    /// <summary>What identifies a schedule's slots: its expression and time zone (hashed, short).</summary>
    internal static string Fingerprint(TaskSchedule schedule) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{schedule.Expression}\n{schedule.TimeZone.Id}")))[..16];

    /// <summary>The oldest manual history entries beyond the limit (the manual runs are kept apart from the slots, to the same limit).</summary>
    private async Task<IReadOnlyList<string>> ManualTrimCandidatesAsync(TaskId task, string ownKey, int historyLimit, CancellationToken cancellationToken)
    {
        var limit = Math.Max(1, historyLimit);
        try
        {
            var keys = (await store.Client.Kv.KeysAsync(store.Layout.ManualHistoryPrefix(task.Namespace, task.Name), cancellationToken: cancellationToken).ConfigureAwait(false)).Value
                .Where(k => k != ownKey).Order(StringComparer.Ordinal).ToList();
            var excess = keys.Count - (limit - 1);
            return excess <= 0 ? [] : [.. keys.Take(Math.Min(excess, MaxTrimPerFinish))];
        }
        catch (ConsulException)
        {
            return [];
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
