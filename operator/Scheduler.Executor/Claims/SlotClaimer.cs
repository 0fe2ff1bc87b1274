using Dtask.Consul;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Txn;
using Dtask.Core.Model;
using Dtask.Core.State;

namespace Dtask.Executor.Claims;

/// <summary>
/// Claims a task's slot, exactly once across every executor (DESIGN.md, "Exactly one fire per slot"):
/// <list type="number">
/// <item>Read the run record consistently, with its ModifyIndex. Its slot at or after this one: already claimed
/// (unless it is this very claim, same run id and session, whose earlier answer was lost: then it is ours).
/// <c>running</c> and the lock key held by a session: busy. <c>running</c> but the lock key holds no session
/// (Consul releases the locks of an invalidated session, so the holder's session is gone): the record is marked
/// <c>abandoned</c> with a CAS, in the same transaction as its history entry when none exists, then the claim goes on.</item>
/// <item>Claim in ONE transaction: <c>lock</c> the lock key with the executor's session AND <c>cas</c> the run record at
/// the index read (0: it must not exist) to <c>running</c> AND <c>check-not-exists</c> on <c>history/&lt;slot&gt;</c>, so a
/// slot already recorded <c>skipped</c> or <c>missed</c> is never claimed afterwards. A rollback means another executor
/// won, the lock is busy, lock-delay is in force, or the slot is recorded: re-read to say which, and do not fire (when
/// the record changed only for an earlier slot and the lock is free, the claim starts again from step 1). A
/// timeout, 5xx or unreachable agent means the outcome is unknown: re-read, and the claim is ours only when the stored
/// record carries our run id.</item>
/// <item>The fence is the run record's ModifyIndex returned by the transaction.</item>
/// </list>
/// A claim that reaches step 2 costs one write (the transaction); the common "already claimed" answer costs none.
/// </summary>
/// <param name="store">Where the run records and locks are.</param>
/// <param name="time">The clock.</param>
/// <param name="reads">When set, the first consistent read of each claim goes through it (a consistent read-only
/// transaction answers many claims due at the same instant at once).</param>
/// <param name="claims">When set, the claim transactions go through it (one request carries the claims due at the same
/// instant, each still all-or-nothing).</param>
public sealed class SlotClaimer(RunStateStore store, TimeProvider? time = null, RunRecordBatchReader? reads = null, TxnBatcher? claims = null)
{
    private const int MaxRounds = 3;
    private readonly TimeProvider time = time ?? TimeProvider.System;

    private ConsulClient Client => store.Client;

    private KvLayout Layout => store.Layout;

    /// <summary>A new run id: the slot and 12 random hex digits.</summary>
    public static string NewRunId(long slot) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{slot}-{Guid.NewGuid().ToString("N")[..12]}");

    /// <summary>Tries to claim <paramref name="slot"/> of <paramref name="task"/> for <paramref name="node"/> with <paramref name="sessionId"/>.</summary>
    /// <exception cref="ConsulException">Consul could not be read (or refused: permission denied).</exception>
    public async Task<ClaimOutcome> ClaimAsync(TaskId task, long slot, string node, string sessionId, string? runId = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentException.ThrowIfNullOrEmpty(node);
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        runId ??= NewRunId(slot);
        RunRecord? abandoned = null;
        for (var round = 0; ; round++)
        {
            var stored = round == 0 && reads is not null
                ? await reads.ReadAsync(task, cancellationToken).ConfigureAwait(false)
                : await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false);
            if (stored.Record is { } current && current.Slot >= slot)
            {
                if (IsOurs(current, runId, sessionId))
                {
                    return Claimed(task, current, stored.ModifyIndex) with { Abandoned = abandoned };
                }

                return new ClaimOutcome(ClaimStatus.AlreadyClaimed, null, current,
                    $"slot {current.Slot} is {Describe(current.State)} by node {current.Node}") { Abandoned = abandoned, CurrentIndex = stored.ModifyIndex };
            }

            var index = stored.ModifyIndex;
            var replaced = stored.Record;
            if (stored.Record is { IsRunning: true } running)
            {
                var lockPair = await store.ReadLockAsync(task, cancellationToken).ConfigureAwait(false);
                if (lockPair?.Session is { } holder)
                {
                    return new ClaimOutcome(ClaimStatus.Busy, null, running,
                        $"slot {running.Slot} is still running on node {running.Node} (session {holder})") { Abandoned = abandoned, CurrentIndex = index };
                }

                var marked = await AbandonAsync(task, running, index, cancellationToken).ConfigureAwait(false);
                if (marked is null)
                {
                    if (round >= MaxRounds)
                    {
                        return new ClaimOutcome(ClaimStatus.Contended, null, running, "the run record kept changing while marking it abandoned") { Abandoned = abandoned };
                    }

                    continue; // Someone else wrote the record: read again.
                }

                (abandoned, index) = marked.Value;
                replaced = abandoned;
            }

            var claimed = await TryClaimAsync(task, slot, node, sessionId, runId, index, replaced, cancellationToken).ConfigureAwait(false);
            if (claimed.Status == ClaimStatus.Contended && round < MaxRounds)
            {
                // The run record changed since it was read (an earlier slot claimed, or claimed and finished), yet no
                // claim of this slot or a later one holds it and the lock is free: read again and decide again.
                continue;
            }

            return claimed with { Abandoned = abandoned };
        }
    }

    /// <summary>
    /// Claims the manual run of <paramref name="trigger"/>: the same transaction as a slot's claim (<c>lock</c> with our
    /// session, <c>cas</c> of the run record at the index read) with a <c>delete-cas</c> of the trigger's key, so exactly
    /// one claim per trigger commits and the trigger is gone once claimed. The run record keeps the slot of the record it
    /// replaces: a manual run is not a slot and never moves the schedule. <see cref="ClaimStatus.AlreadyClaimed"/> when
    /// the trigger's key is gone (run or dropped by someone), <see cref="ClaimStatus.Busy"/> while a run holds the lock.
    /// </summary>
    /// <exception cref="ConsulException">Consul could not be read (or refused: permission denied).</exception>
    public async Task<ClaimOutcome> ClaimManualAsync(TaskId task, ManualTrigger trigger, string node, string sessionId, string runId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(trigger);
        ArgumentException.ThrowIfNullOrEmpty(node);
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        ArgumentException.ThrowIfNullOrEmpty(runId);
        var runKey = Layout.RunKey(task.Namespace, task.Name);
        var lockKey = Layout.LockKey(task.Namespace, task.Name);
        RunRecord? abandoned = null;
        for (var round = 0; ; round++)
        {
            var stored = await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false);
            if (stored.Record is { } mine && IsOurs(mine, runId, sessionId))
            {
                return Claimed(task, mine, stored.ModifyIndex) with { Abandoned = abandoned }; // An earlier answer was lost.
            }

            var pending = (await Client.Kv.GetAsync(trigger.Key, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
            if (pending is null || pending.CreateIndex != trigger.CreateIndex)
            {
                return new ClaimOutcome(ClaimStatus.AlreadyClaimed, null, stored.Record, $"trigger {trigger.Id} was run or dropped already")
                {
                    Abandoned = abandoned,
                    CurrentIndex = stored.ModifyIndex,
                };
            }

            var index = stored.ModifyIndex;
            var replaced = stored.Record;
            if (stored.Record is { IsRunning: true } running)
            {
                var lockPair = await store.ReadLockAsync(task, cancellationToken).ConfigureAwait(false);
                if (lockPair?.Session is { } holder)
                {
                    return new ClaimOutcome(ClaimStatus.Busy, null, running,
                        $"{(running.IsManual ? "manual run " + running.Trigger : "slot " + running.Slot)} is still running on node {running.Node} (session {holder})")
                    {
                        Abandoned = abandoned,
                        CurrentIndex = index,
                    };
                }

                var marked = await AbandonAsync(task, running, index, cancellationToken).ConfigureAwait(false);
                if (marked is null)
                {
                    if (round >= MaxRounds)
                    {
                        return new ClaimOutcome(ClaimStatus.Contended, null, running, "the run record kept changing while marking it abandoned") { Abandoned = abandoned };
                    }

                    continue;
                }

                (abandoned, index) = marked.Value;
                replaced = abandoned;
            }

            var record = RunRecords.ClaimedManual(replaced, trigger, runId, node, sessionId, time.GetUtcNow());
            var value = RunStateStore.Encode(record);
            TxnResult result;
            try
            {
                // Fails when the trigger's key is gone (dropped, or claimed by someone) since it was read.
                result = (await Client.Txn.ExecuteAsync([TxnOp.Lock(lockKey, value, sessionId), TxnOp.Cas(runKey, value, index),
                    .. TxnOp.DeleteExisting(trigger.Key, pending.ModifyIndex)], cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
            }
            catch (Exception e) when (IsUnknownOutcome(e, cancellationToken))
            {
                continue; // What is stored decides: our record (the claim committed), or try again.
            }

            if (result.Committed)
            {
                return Claimed(task, record, result.Results.Last(r => r.Key == runKey).ModifyIndex) with { Abandoned = abandoned };
            }

            if (result.Errors.Any(e => e.OperationIndex == 0))
            {
                var lockPair = await store.ReadLockAsync(task, cancellationToken).ConfigureAwait(false);
                return lockPair?.Session is { } holder
                    ? new ClaimOutcome(ClaimStatus.Busy, null, stored.Record, $"the lock is held by session {holder}") { Abandoned = abandoned, CurrentIndex = index }
                    : new ClaimOutcome(ClaimStatus.LockDelay, null, stored.Record, "the lock is free but refused: lock-delay of an ended session is in force") { Abandoned = abandoned };
            }

            if (round >= MaxRounds)
            {
                return new ClaimOutcome(ClaimStatus.Contended, null, stored.Record, "the run record or the trigger changed at every try") { Abandoned = abandoned };
            }

            // The run record changed (a run finished or was claimed) or the trigger went: read again and decide again.
        }
    }

    private async Task<ClaimOutcome> TryClaimAsync(TaskId task, long slot, string node, string sessionId, string runId, ulong index, RunRecord? replaced,
        CancellationToken cancellationToken)
    {
        var runKey = Layout.RunKey(task.Namespace, task.Name);
        var lockKey = Layout.LockKey(task.Namespace, task.Name);
        var historyKey = Layout.HistoryKey(task.Namespace, task.Name, slot);
        var record = RunRecords.Claimed(slot, runId, node, sessionId, time.GetUtcNow(), replaced);
        var value = RunStateStore.Encode(record);
        TxnResult result;
        try
        {
            TxnOp[] operations = [TxnOp.Lock(lockKey, value, sessionId), TxnOp.Cas(runKey, value, index), TxnOp.CheckNotExists(historyKey)];
            result = claims is not null
                ? await claims.ExecuteAsync(operations, cancellationToken).ConfigureAwait(false)
                : (await Client.Txn.ExecuteAsync(operations, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (Exception e) when (IsUnknownOutcome(e, cancellationToken))
        {
            // The transaction may or may not have committed: what is stored decides.
            StoredRun stored;
            try
            {
                stored = await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false);
            }
            catch (ConsulException unread)
            {
                throw new ClaimUnconfirmedException(task, slot, runId, sessionId, unread);
            }

            if (stored.Record is { } mine && IsOurs(mine, runId, sessionId))
            {
                return Claimed(task, mine, stored.ModifyIndex);
            }

            return await ExplainRollbackAsync(task, slot, stored, lockFailed: false, recorded: false, cancellationToken).ConfigureAwait(false);
        }

        if (result.Committed)
        {
            var written = result.Results.LastOrDefault(r => r.Key == runKey)
                ?? throw new InvalidOperationException($"the claim transaction returned no entry for '{runKey}'");
            return Claimed(task, record, written.ModifyIndex);
        }

        var lockFailed = result.Errors.Any(e => e.OperationIndex == 0);
        var recorded = result.Errors.Any(e => e.OperationIndex == 2);
        var after = await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false);
        return await ExplainRollbackAsync(task, slot, after, lockFailed, recorded, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ClaimOutcome> ExplainRollbackAsync(TaskId task, long slot, StoredRun stored, bool lockFailed, bool recorded, CancellationToken cancellationToken)
    {
        if (stored.Record is { } current && current.Slot >= slot)
        {
            return new ClaimOutcome(ClaimStatus.AlreadyClaimed, null, current, $"slot {current.Slot} is {Describe(current.State)} by node {current.Node}")
            {
                CurrentIndex = stored.ModifyIndex,
            };
        }

        if (recorded)
        {
            var marker = await ReadHistoryAsync(task, slot, cancellationToken).ConfigureAwait(false);
            return new ClaimOutcome(ClaimStatus.AlreadyClaimed, null, stored.Record,
                marker is { } m ? $"slot {slot} is {Describe(m.State)} by node {m.Node}" : $"slot {slot} has a history entry already")
            {
                CurrentIndex = stored.ModifyIndex,
            };
        }

        var lockPair = await store.ReadLockAsync(task, cancellationToken).ConfigureAwait(false);
        if (lockPair?.Session is { } holder)
        {
            return new ClaimOutcome(ClaimStatus.Busy, null, stored.Record,
                $"the lock is held by session {holder}{(stored.Record is { } r ? $" (slot {r.Slot} on node {r.Node})" : "")}")
            {
                CurrentIndex = stored.ModifyIndex,
            };
        }

        return lockFailed
            ? new ClaimOutcome(ClaimStatus.LockDelay, null, stored.Record, "the lock is free but refused: lock-delay of an ended session is in force")
            : new ClaimOutcome(ClaimStatus.Contended, null, stored.Record, "another executor wrote the run record first");
    }

    private async Task<RunRecord?> ReadHistoryAsync(TaskId task, long slot, CancellationToken cancellationToken)
    {
        var pair = (await Client.Kv.GetAsync(Layout.HistoryKey(task.Namespace, task.Name, slot), QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
        return pair is null ? null : RunStateStore.Decode(pair.Value);
    }

    /// <summary>
    /// Resolves a claim whose answer was lost and could not be read back (<see cref="ClaimUnconfirmedException"/>), when
    /// its claimant gives up on the slot without running it (deadline passed, shutdown): with a consistent read, and when
    /// the stored record is that claim (<paramref name="runId"/> and <paramref name="sessionId"/>, <c>running</c>: held,
    /// with no child), releases it in ONE transaction: <c>cas</c> of the run record at the index read to <c>missed</c>
    /// with reason <see cref="ClaimUnconfirmedReason"/> (the slot did not run), <c>cas</c> 0 of its history entry, and
    /// <c>unlock</c> of the lock key with the session. When the session is gone already (the lock is free), the unlock is
    /// left out; when a history entry exists, it is left alone. When another claimer recorded the claim <c>abandoned</c>
    /// meanwhile (the session ended during the outage), that record is corrected to the same <c>missed</c> record:
    /// nothing ran.
    /// </summary>
    /// <returns>The record written, or null when nothing of this claim is stored (the claim never committed, or is over).</returns>
    /// <exception cref="ConsulException">Consul could not be read or written: the claim is still unresolved.</exception>
    public async Task<RunRecord?> ReleaseUnconfirmedAsync(TaskId task, long slot, string runId, string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        var runKey = Layout.RunKey(task.Namespace, task.Name);
        var lockKey = Layout.LockKey(task.Namespace, task.Name);
        var historyKey = Layout.HistoryKey(task.Namespace, task.Name, slot);
        for (var round = 0; round <= MaxRounds; round++)
        {
            var stored = await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false);
            var history = (await Client.Kv.GetAsync(historyKey, QueryOptions.ConsistentRead, cancellationToken).ConfigureAwait(false)).Value;
            var historyRecord = history is null ? null : RunStateStore.Decode(history.Value);
            var mine = stored.Record is { } r && r.Slot == slot && r.RunId == runId && r.Session == sessionId
                && r.State is RunState.Running or RunState.Abandoned ? r : null;
            var historyMine = historyRecord is { State: RunState.Abandoned } h && h.RunId == runId && h.Session == sessionId;
            if (mine is null && !historyMine)
            {
                return null;
            }

            var released = (mine ?? historyRecord!) with
            {
                State = RunState.Missed,
                Reason = ClaimUnconfirmedReason,
                FinishedAt = time.GetUtcNow(),
            };
            var value = RunStateStore.Encode(released);
            List<TxnOp> operations = [];
            if (mine is not null)
            {
                operations.Add(TxnOp.Cas(runKey, value, stored.ModifyIndex));
            }

            if (history is null || historyMine)
            {
                operations.Add(TxnOp.Cas(historyKey, value, history?.ModifyIndex ?? 0));
            }

            var lockPair = mine is { IsRunning: true } ? await store.ReadLockAsync(task, cancellationToken).ConfigureAwait(false) : null;
            if (lockPair?.Session == sessionId)
            {
                operations.Add(TxnOp.Unlock(lockKey, ReadOnlyMemory<byte>.Empty, sessionId));
            }

            var result = (await Client.Txn.ExecuteAsync(operations, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
            if (result.Committed)
            {
                return released;
            }

            // Something changed between the reads and the write (the session ended, another executor wrote): read again.
        }

        throw new ConsulConflictException(runKey, $"the run record of {task} kept changing while releasing the unconfirmed claim of slot {slot}");
    }

    /// <summary>
    /// The reason of a slot whose claim was stored but never confirmed to its claimant (the answer was lost and Consul
    /// could not be read back before the claimant gave up): recorded <c>missed</c>, nothing ran.
    /// </summary>
    public const string ClaimUnconfirmedReason = RunReasons.ClaimUnconfirmed;

    /// <summary>The stored record is this very claim (its answer was lost on the way): the same run id and session, still running.</summary>
    private static bool IsOurs(RunRecord stored, string runId, string sessionId) =>
        stored.RunId == runId && stored.Session == sessionId && stored.IsRunning;

    private static ClaimOutcome Claimed(TaskId task, RunRecord record, ulong index) =>
        new(ClaimStatus.Claimed, new SlotClaim(task, record.Slot, record.RunId, record.Node, record.Session!, new FenceToken(index), record, index),
            record, $"claimed slot {record.Slot} with fence {index}");

    /// <summary>
    /// Marks a running record whose session is gone as abandoned, with a CAS at the index read; null when the CAS lost
    /// (re-read). Its history entry is written in the same transaction (CAS 0), so no other marker can slip into
    /// <c>history/&lt;slot&gt;</c> between the two; when the holder recorded its own entry there first, only the run record
    /// is written.
    /// </summary>
    private async Task<(RunRecord Record, ulong Index)?> AbandonAsync(TaskId task, RunRecord running, ulong index, CancellationToken cancellationToken)
    {
        var runKey = Layout.RunKey(task.Namespace, task.Name);
        var historyKey = Layout.HistoryKeyOf(task.Namespace, task.Name, running);
        var abandoned = RunRecords.Abandoned(running, index, time.GetUtcNow());
        var value = RunStateStore.Encode(abandoned);
        var result = (await Client.Txn.ExecuteAsync([TxnOp.Cas(runKey, value, index), TxnOp.Cas(historyKey, value, 0)], cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        if (!result.Committed && !result.Errors.Any(e => e.OperationIndex == 0))
        {
            // The history entry is first-writer-wins: the holder recorded its own (`lost`) entry already.
            result = (await Client.Txn.ExecuteAsync([TxnOp.Cas(runKey, value, index)], cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        }

        if (!result.Committed)
        {
            return null;
        }

        return (abandoned, result.Results.Last(r => r.Key == runKey).ModifyIndex);
    }

    /// <summary>
    /// A failure after which the write may or may not have been applied, and that may pass if tried again: the agent
    /// could not be reached or timed out, a 5xx (no leader among them), or 429 (not applied, but worth another try).
    /// </summary>
    internal static bool IsUnknownOutcome(Exception e, CancellationToken cancellationToken) => e switch
    {
        ConsulUnreachableException or ConsulServerException or ConsulRateLimitedException => true,
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        _ => false,
    };

    private static string Describe(RunState state) => state switch
    {
        RunState.Running => "being run",
        RunState.Skipped => "recorded skipped",
        RunState.Missed => "recorded missed",
        _ => "already run",
    };
}

/// <summary>
/// A claim transaction was sent, its answer was lost (timeout, reset, 5xx), and the run record could not be read back to
/// say whether it committed: the slot may be held by this claimant (<see cref="RunId"/>, <see cref="SessionId"/>) with no
/// child. Try the claim again with the same run id (a stored claim is recognised as ours and run), or release it with
/// <see cref="SlotClaimer.ReleaseUnconfirmedAsync"/> when giving up on the slot.
/// </summary>
public sealed class ClaimUnconfirmedException(TaskId task, long slot, string runId, string sessionId, ConsulException inner)
    : ConsulException(inner?.Subject ?? "", $"the claim of slot {slot} of {task} was sent but could not be confirmed: {inner?.Message}", inner?.StatusCode, inner)
{
    /// <summary>The task.</summary>
    public TaskId Task { get; } = task;

    /// <summary>The slot claimed.</summary>
    public long Slot { get; } = slot;

    /// <summary>The claim's run id.</summary>
    public string RunId { get; } = runId;

    /// <summary>The session the claim would hold the lock with.</summary>
    public string SessionId { get; } = sessionId;
}
