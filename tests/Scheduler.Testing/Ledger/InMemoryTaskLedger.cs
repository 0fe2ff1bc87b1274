using System.Text;
using Dtask.Consul.Errors;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Consul.Locking;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Ledger;

namespace Dtask.Testing.Ledger;

/// <summary>
/// A task ledger in memory, for deterministic in-process tests of firing: one lock-guarded state per task (the run
/// record, the lock holder, the history, pending triggers), modify indexes taken from one global counter like Consul's
/// Raft index, sessions that can be ended (their locks are released and lock-delay starts, as in Consul), and lock
/// watches that see both. Each method has the outcome the Consul ledger (<see cref="ConsulTaskLedger"/>) has for the same
/// state; the ledger conformance tests run the same cases against both.
/// </summary>
/// <remarks>
/// Faults: <see cref="LoseNextClaimAnswer"/> makes the next slot claim commit and then answer as if its response had
/// been lost and could not be read back (<see cref="ClaimUnconfirmedException"/>).
/// </remarks>
public sealed class InMemoryTaskLedger(TimeProvider? time = null) : ITaskLedger
{
    private const int MaxTrimPerFinish = 48;
    private readonly TimeProvider time = time ?? TimeProvider.System;
    private readonly Lock gate = new();
    private readonly Dictionary<TaskId, TaskState> tasks = [];
    private readonly Dictionary<string, InMemoryLedgerSession> sessions = [];
    private ulong index;
    private TaskCompletionSource changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SortedDictionary<string, KvPair> kv = new(StringComparer.Ordinal);
    private int sessionCount;
    private bool loseNextClaimAnswer;
    private Action? afterNextClaim;

    /// <summary>The key layout the fleet folders and control requests are listed under.</summary>
    public KvLayout Layout { get; init; } = new();

    /// <summary>The modify index of the last write.</summary>
    public ulong Index
    {
        get
        {
            lock (gate)
            {
                return index;
            }
        }
    }

    /// <summary>Opens a live session whose locks, when it ends, are refused to everyone for <paramref name="lockDelay"/>.</summary>
    public InMemoryLedgerSession OpenSession(TimeSpan lockDelay = default)
    {
        lock (gate)
        {
            var session = new InMemoryLedgerSession($"mem-session-{++sessionCount}", lockDelay);
            sessions[session.Id] = session;
            return session;
        }
    }

    /// <summary>
    /// Ends <paramref name="session"/> as Consul invalidates one: it is lost (its <see cref="ILedgerSession.Lost"/> fires
    /// first), then every lock it holds is released and lock-delay starts on it.
    /// </summary>
    public void EndSession(InMemoryLedgerSession session, string reason = "the session was invalidated")
    {
        ArgumentNullException.ThrowIfNull(session);
        List<InMemoryLockWatch> lost = [];
        lock (gate)
        {
            if (!sessions.Remove(session.Id))
            {
                return;
            }

            // The keys it holds in the fleet folders are node registrations, held by sessions whose behavior is delete.
            foreach (var key in kv.Values.Where(p => p.Session == session.Id).Select(p => p.Key).ToList())
            {
                kv.Remove(key);
                Next();
            }

            foreach (var state in tasks.Values.Where(s => s.LockHolder == session.Id))
            {
                state.LockHolder = null;
                state.LockIndex = Next();
                state.LockDelayUntil = time.GetUtcNow() + session.LockDelay;
                lost.AddRange(state.Watches);
            }
        }

        session.Lose(reason);
        foreach (var watch in lost)
        {
            watch.LoseKey(session.Id);
        }
    }

    /// <summary>Writes a manual trigger of <paramref name="task"/> (as <c>dtask trigger</c> does), pending until claimed.</summary>
    public ManualTrigger AddTrigger(TaskId task, string id)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentException.ThrowIfNullOrEmpty(id);
        lock (gate)
        {
            var trigger = new ManualTrigger(id, Layout.TriggerKey(task.Namespace, task.Name, id), Next());
            State(task).Triggers[trigger.Key] = trigger.CreateIndex;
            State(task).TriggerRequests[trigger.Key] = new ControlRequest { Action = ControlAction.Trigger, Id = id, RequestedAt = time.GetUtcNow() };
            return trigger;
        }
    }

    /// <summary>The create indexes of the triggers of <paramref name="task"/> still pending (neither claimed nor dropped).</summary>
    public IReadOnlyList<ulong> PendingTriggers(TaskId task)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            return [.. State(task).Triggers.Values];
        }
    }

    /// <summary>The session holding the lock of <paramref name="task"/>; null when it is free.</summary>
    public string? LockHolder(TaskId task)
    {
        lock (gate)
        {
            return State(task).LockHolder;
        }
    }

    /// <summary>Runs <paramref name="action"/> once the next slot claim has committed, before it answers (a pause of the
    /// claimant between its claim and what follows, for example).</summary>
    public void AfterNextClaim(Action action)
    {
        lock (gate)
        {
            afterNextClaim = action;
        }
    }

    /// <summary>The next slot claim commits, then answers as if its response was lost and the read-back failed.</summary>
    public void LoseNextClaimAnswer()
    {
        lock (gate)
        {
            loseNextClaimAnswer = true;
        }
    }

    /// <inheritdoc/>
    public Task<StoredRun> ReadRunAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            var state = State(task);
            return Task.FromResult(new StoredRun(state.Run, state.Run is null ? 0 : state.RunIndex));
        }
    }

    /// <inheritdoc/>
    public Task<StoredRun> ReadRunBatchedAsync(TaskId task, CancellationToken cancellationToken = default) => ReadRunAsync(task, cancellationToken);

    /// <inheritdoc/>
    public Task<RunRecord?> PeekRunAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            return Task.FromResult(State(task).Run);
        }
    }

    /// <inheritdoc/>
    public async Task WaitForRunChangeAsync(TaskId task, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        Task changed;
        lock (gate)
        {
            var state = State(task);
            if (state.Run is not { IsRunning: true })
            {
                return;
            }

            state.RunChanged ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            changed = state.RunChanged.Task;
        }

        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var timeout = Task.Delay(maxWait, time, done.Token);
        await Task.WhenAny(changed, timeout).ConfigureAwait(false);
        await done.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <inheritdoc/>
    public Task<bool> HasHistoryAsync(TaskId task, long slot, bool consistent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            return Task.FromResult(State(task).History.ContainsKey(slot));
        }
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<RunRecord>> ReadHistoryAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            var state = State(task);
            IReadOnlyList<RunRecord> history = [.. state.History.Values.Concat(state.Manual.Values).OrderByDescending(r => r.OrderKey)];
            return Task.FromResult(history);
        }
    }

    /// <inheritdoc/>
    public Task<ClaimOutcome> ClaimAsync(TaskId task, long slot, string node, string sessionId, string? runId = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentException.ThrowIfNullOrEmpty(node);
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        runId ??= SlotClaimer.NewRunId(slot);
        lock (gate)
        {
            var state = State(task);
            if (state.Run is { } current && current.Slot >= slot)
            {
                return Task.FromResult(IsOurs(current, runId, sessionId)
                    ? Claimed(task, current, state.RunIndex)
                    : new ClaimOutcome(ClaimStatus.AlreadyClaimed, null, current, $"slot {current.Slot} is {Describe(current.State)} by node {current.Node}")
                    {
                        CurrentIndex = state.RunIndex,
                    });
            }

            RunRecord? abandoned = null;
            if (state.Run is { IsRunning: true } running)
            {
                if (state.LockHolder is { } holder)
                {
                    return Task.FromResult(new ClaimOutcome(ClaimStatus.Busy, null, running,
                        $"slot {running.Slot} is still running on node {running.Node} (session {holder})") { CurrentIndex = state.RunIndex });
                }

                abandoned = Abandon(state, running);
            }

            var record = RunRecords.Claimed(slot, runId, node, sessionId, time.GetUtcNow(), state.Run);
            var lockFailed = !MayLock(state, sessionId);
            var recorded = !lockFailed && state.History.ContainsKey(slot);
            if (!lockFailed && !recorded)
            {
                Write(state, record);
                TakeLock(state, sessionId);
                if (afterNextClaim is { } after)
                {
                    afterNextClaim = null;
                    after();
                }

                if (loseNextClaimAnswer)
                {
                    loseNextClaimAnswer = false;
                    return Task.FromException<ClaimOutcome>(new ClaimUnconfirmedException(task, slot, runId, sessionId,
                        new ConsulUnreachableException("txn", "the answer to the claim transaction was lost", null)));
                }

                return Task.FromResult(Claimed(task, record, state.RunIndex) with { Abandoned = abandoned });
            }

            return Task.FromResult(ExplainRollback(state, slot, lockFailed, recorded) with { Abandoned = abandoned });
        }
    }

    /// <inheritdoc/>
    public Task<ClaimOutcome> ClaimManualAsync(TaskId task, ManualTrigger trigger, string node, string sessionId, string runId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(trigger);
        ArgumentException.ThrowIfNullOrEmpty(node);
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        ArgumentException.ThrowIfNullOrEmpty(runId);
        lock (gate)
        {
            var state = State(task);
            if (state.Run is { } mine && IsOurs(mine, runId, sessionId))
            {
                return Task.FromResult(Claimed(task, mine, state.RunIndex));
            }

            if (!state.Triggers.TryGetValue(trigger.Key, out var created) || created != trigger.CreateIndex)
            {
                return Task.FromResult(new ClaimOutcome(ClaimStatus.AlreadyClaimed, null, state.Run, $"trigger {trigger.Id} was run or dropped already")
                {
                    CurrentIndex = state.Run is null ? 0 : state.RunIndex,
                });
            }

            RunRecord? abandoned = null;
            if (state.Run is { IsRunning: true } running)
            {
                if (state.LockHolder is { } holder)
                {
                    return Task.FromResult(new ClaimOutcome(ClaimStatus.Busy, null, running,
                        $"{(running.IsManual ? "manual run " + running.Trigger : "slot " + running.Slot)} is still running on node {running.Node} (session {holder})")
                    {
                        CurrentIndex = state.RunIndex,
                    });
                }

                abandoned = Abandon(state, running);
            }

            var record = RunRecords.ClaimedManual(state.Run, trigger, runId, node, sessionId, time.GetUtcNow());
            if (MayLock(state, sessionId))
            {
                Write(state, record);
                TakeLock(state, sessionId);
                state.Triggers.Remove(trigger.Key);
                state.TriggerRequests.Remove(trigger.Key);
                return Task.FromResult(Claimed(task, record, state.RunIndex) with { Abandoned = abandoned });
            }

            return Task.FromResult((state.LockHolder is { } busy
                ? new ClaimOutcome(ClaimStatus.Busy, null, state.Run, $"the lock is held by session {busy}") { CurrentIndex = state.RunIndex }
                : new ClaimOutcome(ClaimStatus.LockDelay, null, state.Run, "the lock is free but refused: lock-delay of an ended session is in force")) with { Abandoned = abandoned });
        }
    }

    /// <inheritdoc/>
    public Task<RunRecord?> ReleaseUnconfirmedAsync(TaskId task, long slot, string runId, string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        List<InMemoryLockWatch> lost = [];
        RunRecord? released;
        lock (gate)
        {
            var state = State(task);
            state.History.TryGetValue(slot, out var historyRecord);
            var mine = state.Run is { } r && r.Slot == slot && r.RunId == runId && r.Session == sessionId
                && r.State is RunState.Running or RunState.Abandoned ? r : null;
            var historyMine = historyRecord is { State: RunState.Abandoned } h && h.RunId == runId && h.Session == sessionId;
            if (mine is null && !historyMine)
            {
                return Task.FromResult<RunRecord?>(null);
            }

            released = (mine ?? historyRecord!) with
            {
                State = RunState.Missed,
                Reason = RunReasons.ClaimUnconfirmed,
                FinishedAt = time.GetUtcNow(),
            };
            var at = Next();
            if (mine is not null)
            {
                state.Run = released;
                state.RunIndex = at;
            }

            if (historyRecord is null || historyMine)
            {
                state.History[slot] = released;
            }

            if (mine is { IsRunning: true } && state.LockHolder == sessionId)
            {
                state.LockHolder = null;
                state.LockIndex = at;
                lost.AddRange(state.Watches);
            }
        }

        foreach (var watch in lost)
        {
            watch.LoseKey(sessionId);
        }

        return Task.FromResult<RunRecord?>(released);
    }

    /// <inheritdoc/>
    public Task<SlotClaim?> StartAttemptAsync(SlotClaim claim, int attempt, CancellationToken lockLost, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(claim);
        lock (gate)
        {
            var state = State(claim.Task);
            if (state.LockHolder != claim.SessionId || state.RunIndex != claim.RecordIndex || state.Run is null)
            {
                return Task.FromResult<SlotClaim?>(null);
            }

            var record = RunRecords.NextAttempt(claim.Record, attempt, claim.Fence.AsLong, time.GetUtcNow());
            Write(state, record);
            return Task.FromResult<SlotClaim?>(claim with { Record = record, RecordIndex = state.RunIndex });
        }
    }

    /// <inheritdoc/>
    public Task<FinishResult> FinishAsync(SlotClaim claim, RunRecord final, int historyLimit, CancellationToken lockLost, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(claim);
        ArgumentNullException.ThrowIfNull(final);
        List<InMemoryLockWatch> released = [];
        FinishResult result;
        lock (gate)
        {
            var state = State(claim.Task);
            var limit = Math.Max(1, historyLimit);
            var held = state.LockHolder == claim.SessionId;
            if (held && state.Run is not null && state.RunIndex == claim.RecordIndex)
            {
                var entries = final.IsManual ? state.Manual : state.History;
                var own = final.IsManual ? final.TriggerIndex!.Value : final.Slot;
                var others = entries.Keys.Where(k => k != own).Order().ToList();
                var excess = others.Count - (limit - 1);
                var trim = excess <= 0 ? [] : others.Take(Math.Min(excess, MaxTrimPerFinish)).ToList();
                Write(state, final);
                entries[own] = final;
                foreach (var key in trim)
                {
                    entries.Remove(key);
                }

                state.LockHolder = null;
                state.LockIndex = state.RunIndex;
                released.AddRange(state.Watches);
                result = new FinishResult(FinishStatus.Recorded, true, trim.Count);
            }
            else
            {
                // The lock is gone (or the record changed under it): the run record is left alone, the history entry
                // written only when none exists; a lock still held is released.
                var written = TryWriteHistory(state, final);
                if (held)
                {
                    state.LockHolder = null;
                    state.LockIndex = Next();
                    released.AddRange(state.Watches);
                }

                result = new FinishResult(FinishStatus.LockLost, written, 0);
            }
        }

        foreach (var watch in released)
        {
            watch.LoseKey(claim.SessionId);
        }

        return Task.FromResult(result);
    }

    /// <inheritdoc/>
    public Task<MarkStatus> RecordSkippedAsync(TaskId task, long slot, string node, string reason, ulong runIndex, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            var state = State(task);
            if (state.History.ContainsKey(slot))
            {
                return Task.FromResult(MarkStatus.AlreadyRecorded);
            }

            if ((state.Run is null ? 0 : state.RunIndex) != runIndex)
            {
                return Task.FromResult(MarkStatus.RecordChanged);
            }

            state.History[slot] = NotRun(slot, node, RunState.Skipped, reason);
            Next();
            return Task.FromResult(MarkStatus.Written);
        }
    }

    /// <inheritdoc/>
    public Task<MarkStatus> RecordMissedAsync(TaskId task, long slot, string node, string reason, int historyLimit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            var state = State(task);
            var record = NotRun(slot, node, RunState.Missed, reason);
            switch (state.Run)
            {
                case { State: RunState.Missed or RunState.Skipped } current when current.Slot == slot:
                    return Task.FromResult(MarkStatus.AlreadyRecorded);
                case { } current when current.Slot == slot:
                    return Task.FromResult(MarkStatus.HeldByRun);
                case { } current when current.Slot > slot:
                    var kept = state.History.Keys.ToList();
                    if (kept.Count >= historyLimit && (kept.Count == 0 || slot <= kept[0]))
                    {
                        return Task.FromResult(MarkStatus.Superseded);
                    }

                    return Task.FromResult(TryMark(state, slot, record, advance: false));
                case { IsRunning: true }:
                    return Task.FromResult(TryMark(state, slot, record, advance: false));
                default:
                    return Task.FromResult(TryMark(state, slot, record with { PreviousSlot = RunRecords.GapFrom(state.Run) }, advance: true));
            }
        }
    }

    /// <inheritdoc/>
    public Task<bool> TryWriteHistoryAsync(TaskId task, RunRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(record);
        lock (gate)
        {
            return Task.FromResult(TryWriteHistory(State(task), record));
        }
    }

    /// <inheritdoc/>
    public Task<ManualTrigger?> RequestTriggerAsync(TaskId task, ControlRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrEmpty(request.Id);
        lock (gate)
        {
            var key = Layout.TriggerKey(task.Namespace, task.Name, request.Id);
            var state = State(task);
            if (state.Triggers.ContainsKey(key) || state.Manual.Values.Any(r => r.Trigger == request.Id))
            {
                return Task.FromResult<ManualTrigger?>(null);
            }

            var trigger = new ManualTrigger(request.Id, key, Next());
            state.Triggers[key] = trigger.CreateIndex;
            state.TriggerRequests[key] = request;
            return Task.FromResult<ManualTrigger?>(trigger);
        }
    }

    /// <inheritdoc/>
    public Task<bool> RequestStopAsync(TaskId task, ControlRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrEmpty(request.RunId);
        lock (gate)
        {
            var written = State(task).StopRequests.TryAdd(request.RunId, (request, index + 1));
            if (written)
            {
                Next();
            }
            return Task.FromResult(written);
        }
    }

    /// <inheritdoc/>
    public Task<bool> HasStopRequestAsync(TaskId task, string runId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            return Task.FromResult(State(task).StopRequests.ContainsKey(runId));
        }
    }

    /// <inheritdoc/>
    public Task ClearStopAsync(TaskId task, string runId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            if (State(task).StopRequests.Remove(runId))
            {
                Next();
            }
            return Task.CompletedTask;
        }
    }

    /// <inheritdoc/>
    public Task<bool> ConsumeStopAsync(TaskId task, string runId, ulong modifyIndex, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            var requests = State(task).StopRequests;
            if (!requests.TryGetValue(runId, out var stored) || stored.Index != modifyIndex)
            {
                return Task.FromResult(false);
            }

            requests.Remove(runId);
            Next();
            return Task.FromResult(true);
        }
    }

    /// <summary>The modify index of the stop request of <paramref name="runId"/>; 0 when there is none.</summary>
    public ulong StopRequestIndex(TaskId task, string runId)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            return State(task).StopRequests.TryGetValue(runId, out var stored) ? stored.Index : 0;
        }
    }

    /// <inheritdoc/>
    public Task<bool> DropTriggerAsync(TaskId task, ManualTrigger trigger, RunRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(trigger);
        ArgumentNullException.ThrowIfNull(record);
        lock (gate)
        {
            var state = State(task);
            if (!state.Triggers.TryGetValue(trigger.Key, out var created) || created != trigger.CreateIndex || state.Manual.ContainsKey(trigger.Sequence))
            {
                return Task.FromResult(false);
            }

            state.Triggers.Remove(trigger.Key);
            state.TriggerRequests.Remove(trigger.Key);
            state.Manual[trigger.Sequence] = record;
            Next();
            return Task.FromResult(true);
        }
    }

    /// <summary>Writes the spec of <paramref name="task"/> (as the operator does), its JSON as stored.</summary>
    public void PutSpec(TaskId task, string json)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            Put(Layout.TaskKey(task.Namespace, task.Name), Encoding.UTF8.GetBytes(json), null);
        }
    }

    /// <summary>Removes the spec of <paramref name="task"/>.</summary>
    public void RemoveSpec(TaskId task)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            if (kv.Remove(Layout.TaskKey(task.Namespace, task.Name)))
            {
                Next();
            }
        }
    }

    /// <summary>The refusal of the spec of <paramref name="task"/> an executor reported; null when none.</summary>
    public SpecRefusal? SpecRefusal(TaskId task)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            return kv.TryGetValue(Layout.SpecRefusalKey(task.Namespace, task.Name), out var pair) ? StateJson.Deserialize<SpecRefusal>(pair.ValueAsString()) : null;
        }
    }

    /// <inheritdoc/>
    public async Task<ConsulResponse<IReadOnlyList<KvPair>>> ListAsync(LedgerFolder folder, QueryOptions query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var prefix = folder switch
        {
            LedgerFolder.Tasks => Layout.TasksPrefix,
            LedgerFolder.Nodes => Layout.NodesPrefix,
            LedgerFolder.Control => Layout.ControlPrefix,
            _ => throw new ArgumentOutOfRangeException(nameof(folder), folder, "no such folder"),
        };
        var deadline = time.GetTimestamp();
        var maxWait = query.WaitTime ?? TimeSpan.FromMinutes(5);
        while (true)
        {
            Task wait;
            lock (gate)
            {
                // Every folder's index is the ledger's (plus one: like Consul's, never 0): a watch wakes at any write, and
                // callers see whether their folder changed.
                if (query.WaitIndex == 0 || index + 1 > query.WaitIndex || time.GetElapsedTime(deadline) >= maxWait)
                {
                    return new ConsulResponse<IReadOnlyList<KvPair>>(Listing(folder, prefix), new ConsulResponseMeta(index + 1, true, TimeSpan.Zero, time.GetUtcNow(), TimeSpan.Zero));
                }

                wait = changed.Task;
            }

            try
            {
                await wait.WaitAsync(maxWait - time.GetElapsedTime(deadline), time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Answer with the unchanged listing.
            }
        }
    }

    /// <inheritdoc/>
    public Task PlaceControlAnchorAsync(CancellationToken cancellationToken = default)
    {
        lock (gate)
        {
            if (!kv.ContainsKey(Layout.ControlPrefix + ".watch"))
            {
                Put(Layout.ControlPrefix + ".watch", [], null);
            }
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task ReportSpecRefusalAsync(TaskId task, SpecRefusal refusal, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(refusal);
        lock (gate)
        {
            Put(Layout.SpecRefusalKey(task.Namespace, task.Name), Encoding.UTF8.GetBytes(StateJson.Serialize(refusal)), null);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task<NodeRegistration> RegisterNodeAsync(NodeRecord record, string registrationSession, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentException.ThrowIfNullOrEmpty(registrationSession);
        lock (gate)
        {
            var meta = new ConsulResponseMeta(index, true, TimeSpan.Zero, time.GetUtcNow(), TimeSpan.Zero);
            if (!sessions.ContainsKey(registrationSession))
            {
                throw new ConsulRequestException("PUT /v1/kv/" + Layout.NodeKey(record.Node), $"invalid session \"{registrationSession}\"", System.Net.HttpStatusCode.InternalServerError);
            }

            var key = Layout.NodeKey(record.Node);
            if (kv.TryGetValue(key, out var held) && held.Session is { } holder && holder != registrationSession)
            {
                return Task.FromResult(new NodeRegistration(false, holder, meta));
            }

            Put(key, Encoding.UTF8.GetBytes(StateJson.Serialize(record)), registrationSession);
            return Task.FromResult(new NodeRegistration(true, null, meta with { Index = index }));
        }
    }

    /// <inheritdoc/>
    public Task RemoveNodeAsync(string node, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        lock (gate)
        {
            if (kv.Remove(Layout.NodeKey(node)))
            {
                Next();
            }
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task<bool> ReplaceSpecAsync(TaskId task, string json, ulong modifyIndex, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(json);
        lock (gate)
        {
            var key = Layout.TaskKey(task.Namespace, task.Name);
            var at = kv.TryGetValue(key, out var stored) ? stored.ModifyIndex : 0;
            if (at != modifyIndex)
            {
                return Task.FromResult(false);
            }

            Put(key, Encoding.UTF8.GetBytes(json), null);
            return Task.FromResult(true);
        }
    }

    /// <inheritdoc/>
    public TaskPlaces Locate(TaskId task) => TaskPlaces.Of(Layout, task);

    /// <inheritdoc/>
    public Task<StoredSpec?> ReadSpecAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            return Task.FromResult(kv.TryGetValue(Layout.TaskKey(task.Namespace, task.Name), out var pair) ? new StoredSpec(pair.ValueAsString(), pair.ModifyIndex) : null);
        }
    }

    /// <inheritdoc/>
    /// <remarks>Everything in memory may be read.</remarks>
    public Task CheckSpecsReadableAsync(string taskNamespace, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskNamespace);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task<StoredRunEntry?> ReadRunEntryAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            var state = State(task);
            return Task.FromResult(state.Run is { } run ? new StoredRunEntry(Layout.RunKey(task.Namespace, task.Name), run, state.RunIndex) : null);
        }
    }

    /// <inheritdoc/>
    /// <remarks>History entries keep no modify index here: theirs is 0.</remarks>
    public Task<IReadOnlyList<StoredRunEntry>> ListHistoryAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            var state = State(task);
            IReadOnlyList<StoredRunEntry> entries = [.. state.History.Values.Concat(state.Manual.Values)
                .Select(r => new StoredRunEntry(Layout.HistoryKeyOf(task.Namespace, task.Name, r), r, 0))
                .OrderBy(e => e.Key, StringComparer.Ordinal)];
            return Task.FromResult(entries);
        }
    }

    /// <inheritdoc/>
    public Task<bool> HasRunStateAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            return Task.FromResult((tasks.TryGetValue(task, out var state)
                    && (state.Run is not null || state.LockIndex != 0 || state.History.Count > 0 || state.Manual.Count > 0))
                || kv.ContainsKey(Layout.SpecRefusalKey(task.Namespace, task.Name)));
        }
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<PendingRequest>> ListControlRequestsAsync(TaskId task, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (gate)
        {
            var prefix = Layout.TaskControlPrefix(task.Namespace, task.Name);
            IReadOnlyList<PendingRequest> requests = [.. Listing(LedgerFolder.Control, Layout.ControlPrefix)
                .Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal))
                .Select(p => KvLayout.TrySplitControlKey(p.Key, Layout.ControlPrefix, out _, out _, out var action, out var id)
                    ? new PendingRequest(action, id, p.CreateIndex, StateJson.TryDeserialize<ControlRequest>(p.ValueAsString()))
                    : null)
                .OfType<PendingRequest>()];
            return Task.FromResult(requests);
        }
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<HeldLock>> ListHeldLocksAsync(CancellationToken cancellationToken = default)
    {
        lock (gate)
        {
            IReadOnlyList<HeldLock> held = [.. tasks
                .Where(t => t.Value.LockHolder is not null)
                .Select(t => new HeldLock(t.Key, t.Value.LockHolder!))
                .OrderBy(h => Layout.LockKey(h.Task.Namespace, h.Task.Name), StringComparer.Ordinal)];
            return Task.FromResult(held);
        }
    }

    private void Put(string key, byte[] value, string? session)
    {
        var at = Next();
        kv[key] = new KvPair(key, value, 0, kv.TryGetValue(key, out var old) ? old.CreateIndex : at, at, old?.LockIndex ?? (session is null ? 0u : 1u), session);
    }

    private List<KvPair> Listing(LedgerFolder folder, string prefix)
    {
        var listing = kv.Values.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        if (folder == LedgerFolder.Control)
        {
            foreach (var (task, state) in tasks)
            {
                foreach (var (key, created) in state.Triggers)
                {
                    var request = state.TriggerRequests.GetValueOrDefault(key);
                    listing.Add(new KvPair(key, request is null ? ReadOnlyMemory<byte>.Empty : Encoding.UTF8.GetBytes(StateJson.Serialize(request)), 0, created, created, 0, null));
                }

                foreach (var (runId, (request, at)) in state.StopRequests)
                {
                    listing.Add(new KvPair(Layout.StopKey(task.Namespace, task.Name, runId), Encoding.UTF8.GetBytes(StateJson.Serialize(request)), 0, at, at, 0, null));
                }
            }

            listing.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        }

        return listing;
    }

    private ulong Next()
    {
        index++;
        var woken = changed;
        changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        woken.TrySetResult();
        return index;
    }

    /// <inheritdoc/>
    public ILockWatch WatchLock(TaskId task, ILedgerSession session, TimeSpan startAfter = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(session);
        InMemoryLockWatch watch;
        bool heldNow;
        lock (gate)
        {
            var state = State(task);
            watch = new InMemoryLockWatch(this, state, session);
            state.Watches.Add(watch);
            heldNow = state.LockHolder == session.Id;
        }

        watch.LinkSession();
        if (!heldNow)
        {
            watch.LoseKey(session.Id);
        }

        return watch;
    }

    private void Unwatch(TaskState state, InMemoryLockWatch watch)
    {
        lock (gate)
        {
            state.Watches.Remove(watch);
        }
    }

    private TaskState State(TaskId task)
    {
        if (!tasks.TryGetValue(task, out var state))
        {
            state = new TaskState();
            tasks[task] = state;
        }

        return state;
    }

    private bool MayLock(TaskState state, string sessionId) =>
        sessions.ContainsKey(sessionId)
        && (state.LockHolder is null ? time.GetUtcNow() >= state.LockDelayUntil : state.LockHolder == sessionId);

    private void Write(TaskState state, RunRecord record)
    {
        state.Run = record;
        state.RunIndex = Next();
        state.RunChanged?.TrySetResult();
        state.RunChanged = null;
    }

    private static void TakeLock(TaskState state, string sessionId)
    {
        state.LockHolder = sessionId;
        state.LockIndex = state.RunIndex;
    }

    private RunRecord Abandon(TaskState state, RunRecord running)
    {
        var abandoned = RunRecords.Abandoned(running, state.RunIndex, time.GetUtcNow());
        Write(state, abandoned);
        TryWriteHistory(state, abandoned);
        return abandoned;
    }

    private bool TryWriteHistory(TaskState state, RunRecord record)
    {
        var entries = record.TriggerIndex is null ? state.History : state.Manual;
        var key = record.TriggerIndex ?? record.Slot;
        if (entries.ContainsKey(key))
        {
            return false;
        }

        entries[key] = record;
        Next();
        return true;
    }

    private MarkStatus TryMark(TaskState state, long slot, RunRecord record, bool advance)
    {
        if (state.History.ContainsKey(slot))
        {
            return MarkStatus.AlreadyRecorded;
        }

        state.History[slot] = record;
        if (advance)
        {
            Write(state, record);
        }
        else
        {
            Next();
        }

        return MarkStatus.Written;
    }

    private static ClaimOutcome ExplainRollback(TaskState state, long slot, bool lockFailed, bool recorded)
    {
        var at = state.Run is null ? 0 : state.RunIndex;
        if (state.Run is { } current && current.Slot >= slot)
        {
            return new ClaimOutcome(ClaimStatus.AlreadyClaimed, null, current, $"slot {current.Slot} is {Describe(current.State)} by node {current.Node}") { CurrentIndex = at };
        }

        if (recorded)
        {
            var marker = state.History[slot];
            return new ClaimOutcome(ClaimStatus.AlreadyClaimed, null, state.Run, $"slot {slot} is {Describe(marker.State)} by node {marker.Node}") { CurrentIndex = at };
        }

        if (state.LockHolder is { } holder)
        {
            return new ClaimOutcome(ClaimStatus.Busy, null, state.Run,
                $"the lock is held by session {holder}{(state.Run is { } r ? $" (slot {r.Slot} on node {r.Node})" : "")}") { CurrentIndex = at };
        }

        return lockFailed
            ? new ClaimOutcome(ClaimStatus.LockDelay, null, state.Run, "the lock is free but refused: lock-delay of an ended session is in force")
            : new ClaimOutcome(ClaimStatus.Contended, null, state.Run, "another executor wrote the run record first");
    }

    private RunRecord NotRun(long slot, string node, RunState state, string reason) => RunRecords.NotRun(slot, node, state, reason, time.GetUtcNow());

    private static bool IsOurs(RunRecord stored, string runId, string sessionId) =>
        stored.RunId == runId && stored.Session == sessionId && stored.IsRunning;

    private static ClaimOutcome Claimed(TaskId task, RunRecord record, ulong at) =>
        new(ClaimStatus.Claimed, new SlotClaim(task, record.Slot, record.RunId, record.Node, record.Session!, new FenceToken(at), record, at),
            record, $"claimed slot {record.Slot} with fence {at}");

    private static string Describe(RunState state) => state switch
    {
        RunState.Running => "being run",
        RunState.Skipped => "recorded skipped",
        RunState.Missed => "recorded missed",
        _ => "already run",
    };

    private sealed class TaskState
    {
        public RunRecord? Run { get; set; }

        public ulong RunIndex { get; set; }

        public string? LockHolder { get; set; }

        public ulong LockIndex { get; set; }

        public DateTimeOffset LockDelayUntil { get; set; } = DateTimeOffset.MinValue;

        public SortedDictionary<long, RunRecord> History { get; } = [];

        public SortedDictionary<long, RunRecord> Manual { get; } = [];

        public Dictionary<string, ulong> Triggers { get; } = [];

        public Dictionary<string, ControlRequest> TriggerRequests { get; } = [];

        public Dictionary<string, (ControlRequest Request, ulong Index)> StopRequests { get; } = [];

        public List<InMemoryLockWatch> Watches { get; } = [];

        public TaskCompletionSource? RunChanged { get; set; }
    }

    private sealed class InMemoryLockWatch(InMemoryTaskLedger ledger, TaskState state, ILedgerSession session) : ILockWatch
    {
        private const int KeyCause = 1;
        private const int SessionCause = 2;
        private readonly CancellationTokenSource lost = new();
        private CancellationTokenRegistration sessionLost;
        private int cause;
        private string? reason;

        public CancellationToken Lost => lost.Token;

        public bool IsLost => Volatile.Read(ref cause) != 0;

        public string? LostReason => Volatile.Read(ref reason);

        public bool LostWithSession => Volatile.Read(ref cause) == SessionCause;

        public void LinkSession() =>
            sessionLost = session.Lost.Register(() => Lose(SessionCause, session.LostReason ?? $"session {session.Id} ended"));

        public void LoseKey(string holder) =>
            Lose(KeyCause, $"session {holder} no longer holds the lock (invalidated or released)");

        private void Lose(int by, string why)
        {
            if (Interlocked.CompareExchange(ref cause, by, 0) == 0)
            {
                Volatile.Write(ref reason, why);
                try
                {
                    lost.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // Disposed meanwhile: nobody watches any more.
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            ledger.Unwatch(state, this);
            await sessionLost.DisposeAsync();
            lost.Dispose();
        }
    }
}

/// <summary>A session of an <see cref="InMemoryTaskLedger"/>; ended with <see cref="InMemoryTaskLedger.EndSession"/>.</summary>
public sealed class InMemoryLedgerSession : ILedgerSession, IDisposable
{
    private readonly CancellationTokenSource lost = new();
    private string? lostReason;
    private bool pastDeadline;

    internal InMemoryLedgerSession(string id, TimeSpan lockDelay)
    {
        Id = id;
        LockDelay = lockDelay;
    }

    /// <inheritdoc/>
    public string Id { get; }

    /// <summary>How long the locks it held are refused to everyone once it ends.</summary>
    public TimeSpan LockDelay { get; }

    /// <inheritdoc/>
    public CancellationToken Lost => lost.Token;

    /// <inheritdoc/>
    public string? LostReason => Volatile.Read(ref lostReason);

    /// <inheritdoc/>
    public bool IsPastDeadline => lost.IsCancellationRequested || Volatile.Read(ref pastDeadline);

    /// <summary>Its renewal deadline passed without a renewal (its owner was paused), though it is not known to be lost yet.</summary>
    public void PassDeadline() => Volatile.Write(ref pastDeadline, true);

    /// <summary>Releases the signal of its loss (the session is not ended: see <see cref="InMemoryTaskLedger.EndSession"/>).</summary>
    public void Dispose() => lost.Dispose();

    internal void Lose(string reason)
    {
        if (Interlocked.CompareExchange(ref lostReason, reason, null) is null)
        {
            lost.Cancel();
        }
    }
}
