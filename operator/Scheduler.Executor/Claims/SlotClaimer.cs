using Dtask.Consul;
using Dtask.Consul.Errors;
using Dtask.Consul.Txn;
using Dtask.Core.State;

namespace Dtask.Executor.Claims;

/// <summary>
/// Claims a task's slot, exactly once across every executor (DESIGN.md, "Exactly one fire per slot"):
/// <list type="number">
/// <item>Read the run record consistently, with its ModifyIndex. Its slot at or after this one: already claimed.
/// <c>running</c> and the lock key held by a session: busy. <c>running</c> but the lock key holds no session
/// (Consul releases the locks of an invalidated session, so the holder's session is gone): the record is marked
/// <c>abandoned</c> with a CAS (and its history entry is written if none exists), then the claim goes on.</item>
/// <item>Claim in ONE transaction: <c>lock</c> the lock key with the executor's session AND <c>cas</c> the run record at
/// the index read (0: it must not exist) to <c>running</c>. A rollback means another executor won, the lock is busy,
/// or lock-delay is in force: re-read to say which, and do not fire. A timeout, 5xx or unreachable agent means the
/// outcome is unknown: re-read, and the claim is ours only when the stored record carries our run id.</item>
/// <item>The fence is the run record's ModifyIndex returned by the transaction.</item>
/// </list>
/// A claim that reaches step 2 costs one write (the transaction); the common "already claimed" answer costs none.
/// </summary>
public sealed class SlotClaimer(RunStateStore store, TimeProvider? time = null)
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
            var stored = await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false);
            if (stored.Record is { } current && current.Slot >= slot)
            {
                return new ClaimOutcome(ClaimStatus.AlreadyClaimed, null, current,
                    $"slot {current.Slot} is {Describe(current.State)} by node {current.Node}") { Abandoned = abandoned };
            }

            var index = stored.ModifyIndex;
            if (stored.Record is { IsRunning: true } running)
            {
                var lockPair = await store.ReadLockAsync(task, cancellationToken).ConfigureAwait(false);
                if (lockPair?.Session is { } holder)
                {
                    return new ClaimOutcome(ClaimStatus.Busy, null, running,
                        $"slot {running.Slot} is still running on node {running.Node} (session {holder})") { Abandoned = abandoned };
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
            }

            var claimed = await TryClaimAsync(task, slot, node, sessionId, runId, index, cancellationToken).ConfigureAwait(false);
            return claimed with { Abandoned = abandoned };
        }
    }

    private async Task<ClaimOutcome> TryClaimAsync(TaskId task, long slot, string node, string sessionId, string runId, ulong index, CancellationToken cancellationToken)
    {
        var runKey = Layout.RunKey(task.Namespace, task.Name);
        var lockKey = Layout.LockKey(task.Namespace, task.Name);
        var record = new RunRecord
        {
            Slot = slot,
            RunId = runId,
            Node = node,
            Session = sessionId,
            State = RunState.Running,
            StartedAt = time.GetUtcNow(),
            Attempt = 1,
        };
        var value = RunStateStore.Encode(record);
        TxnResult result;
        try
        {
            result = (await Client.Txn.ExecuteAsync([TxnOp.Lock(lockKey, value, sessionId), TxnOp.Cas(runKey, value, index)],
                cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (Exception e) when (IsUnknownOutcome(e, cancellationToken))
        {
            // The transaction may or may not have committed: what is stored decides.
            var stored = await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false);
            if (stored.Record is { } mine && mine.RunId == runId && mine.Session == sessionId && mine.IsRunning)
            {
                return Claimed(task, mine, stored.ModifyIndex);
            }

            return await ExplainRollbackAsync(task, slot, stored, lockFailed: false, cancellationToken).ConfigureAwait(false);
        }

        if (result.Committed)
        {
            var written = result.Results.LastOrDefault(r => r.Key == runKey)
                ?? throw new InvalidOperationException($"the claim transaction returned no entry for '{runKey}'");
            return Claimed(task, record, written.ModifyIndex);
        }

        var lockFailed = result.Errors.Any(e => e.OperationIndex == 0);
        var after = await store.ReadRunAsync(task, cancellationToken).ConfigureAwait(false);
        return await ExplainRollbackAsync(task, slot, after, lockFailed, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ClaimOutcome> ExplainRollbackAsync(TaskId task, long slot, StoredRun stored, bool lockFailed, CancellationToken cancellationToken)
    {
        if (stored.Record is { } current && current.Slot >= slot)
        {
            return new ClaimOutcome(ClaimStatus.AlreadyClaimed, null, current, $"slot {current.Slot} is {Describe(current.State)} by node {current.Node}");
        }

        var lockPair = await store.ReadLockAsync(task, cancellationToken).ConfigureAwait(false);
        if (lockPair?.Session is { } holder)
        {
            return new ClaimOutcome(ClaimStatus.Busy, null, stored.Record,
                $"the lock is held by session {holder}{(stored.Record is { } r ? $" (slot {r.Slot} on node {r.Node})" : "")}");
        }

        return lockFailed
            ? new ClaimOutcome(ClaimStatus.LockDelay, null, stored.Record, "the lock is free but refused: lock-delay of an ended session is in force")
            : new ClaimOutcome(ClaimStatus.Contended, null, stored.Record, "another executor wrote the run record first");
    }

    private static ClaimOutcome Claimed(TaskId task, RunRecord record, ulong index) =>
        new(ClaimStatus.Claimed, new SlotClaim(task, record.Slot, record.RunId, record.Node, record.Session!, new FenceToken(index), record, index),
            record, $"claimed slot {record.Slot} with fence {index}");

    /// <summary>Marks a running record whose session is gone as abandoned; null when the CAS lost (re-read).</summary>
    private async Task<(RunRecord Record, ulong Index)?> AbandonAsync(TaskId task, RunRecord running, ulong index, CancellationToken cancellationToken)
    {
        var runKey = Layout.RunKey(task.Namespace, task.Name);
        var abandoned = running with
        {
            State = RunState.Abandoned,
            FinishedAt = time.GetUtcNow(),
            Reason = "holder-session-gone",
            Fence = running.Fence != 0 ? running.Fence : checked((long)index),
        };
        var value = RunStateStore.Encode(abandoned);
        var result = (await Client.Txn.ExecuteAsync([TxnOp.Cas(runKey, value, index)], cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        if (!result.Committed)
        {
            return null;
        }

        var newIndex = result.Results.Last(r => r.Key == runKey).ModifyIndex;
        // The history entry is first-writer-wins: the holder may have recorded its own `lost` entry already.
        await new SlotMarker(store, time).TryWriteHistoryAsync(task, abandoned, cancellationToken).ConfigureAwait(false);
        return (abandoned, newIndex);
    }

    internal static bool IsUnknownOutcome(Exception e, CancellationToken cancellationToken) => e switch
    {
        ConsulUnreachableException or ConsulServerException => true,
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
