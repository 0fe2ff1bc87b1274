using System.Collections.Concurrent;
using Dtask.Consul.Errors;
using Dtask.Core.Durations;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Firing;
using Dtask.Executor.Ledger;
using Dtask.Executor.Logging;
using Dtask.Executor.Notifications;
using Dtask.Executor.Processes;
using Serilog;

namespace Dtask.Executor.Daemon;

/// <summary>One slot this executor should try to fire.</summary>
/// <param name="Slot">The slot id (Unix seconds).</param>
/// <param name="FireTime">When it is due (nominal + jitter); the fire delay is measured from it.</param>
/// <param name="Deadline">The last instant a claim may start; afterwards the slot is recorded missed.</param>
public sealed record SlotTicket(long Slot, DateTimeOffset FireTime, DateTimeOffset Deadline)
{
    /// <summary>
    /// Slots at or before this instant were not due (the task was suspended until then, as this executor saw it): a claim
    /// that passed over them records none of them missed.
    /// </summary>
    public DateTimeOffset? NotDueUntil { get; init; }
}

/// <summary>Counts what this executor's firing did, for the shutdown summary.</summary>
public sealed class FiringStats
{
    private long ran;

    /// <summary>Slots this executor claimed and ran.</summary>
    public long Ran => Interlocked.Read(ref ran);

    /// <summary>Counts one run.</summary>
    public void CountRun() => Interlocked.Increment(ref ran);

    /// <summary>Raised for each claim attempt that got an answer (its result) or whose answer was lost (null).</summary>
    public event Action<FireRequest, FireResult?>? Claimed;

    /// <summary>Reports a claim attempt to <see cref="Claimed"/>.</summary>
    public void CountClaim(FireRequest request, FireResult? result) => Claimed?.Invoke(request, result);
}

/// <summary>
/// Tries to fire one slot of one task on this executor, cooperating with the other executors by rank
/// (<see cref="SlotRanking"/>, <see cref="SlotTurn"/>): the first-ranked node claims at the fire time; ranks 1 to K−1
/// look at k·step; the next <see cref="SlotTurn.Watchers"/> ranks look once, between K·step and (K+1)·step in rank order, as
/// backstops, and the ranks after them look only when nodes ranked above them have left the fleet (so a slot costs the same
/// number of reads whatever the fleet's size). A node ranked after the first looks with a
/// stale read first (a claimed slot stays claimed, so "claimed" needs no leader round) and goes on to
/// <see cref="SlotFiring.FireAsync"/> (consistent read, claim transaction) only when the slot looks unclaimed. Applies <c>Replace</c> (asks the holder to stop through <c>control/</c>, keeps trying until
/// the deadline), retries while Consul cannot be reached or the clock guard forbids claims, and records the slot
/// <c>missed</c> when the deadline passes without a claim by anyone — unless the clock guard forbids writes: a node whose
/// clock is skewed claims nothing and records nothing, and the others rank without it. Manual runs
/// (<see cref="ContendManualAsync"/>) are not slots: they never move, block or supersede one.
/// </summary>
public sealed class SlotContender(
    ITaskLedger ledger,
    IClaimSessions membership,
    ClusterView view,
    ClockSkewGuard skew,
    RunningRuns runs,
    IRunNotifier notifier,
    ExecutorOptions options,
    ChildRunner runner,
    FiringStats stats,
    TimeProvider time,
    ILogger logger)
{
    private static readonly TimeSpan RetryMin = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan RetryMax = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan ManualTurnWindow = TimeSpan.FromSeconds(10);

    /// <summary>How far before its instant, by this node's clock, a slot may be claimed (timer and clock resolution).</summary>
    private static readonly TimeSpan EarlyTolerance = TimeSpan.FromMilliseconds(50);

    // Per task, the last claim whose answer was lost and could not be read back: it may hold the slot with no child.
    private readonly ConcurrentDictionary<TaskId, ClaimUnconfirmedException> unconfirmed = new();

    // The slots whose contention (FireUntilDeadlineAsync) is going on: an unconfirmed claim of one of them is resolved by
    // its own contender (its next try recognises it and runs it, or giving up releases it), never by a later slot's.
    private readonly ConcurrentDictionary<(TaskId Task, long Slot), byte> contending = new();

    /// <summary>
    /// How long a trigger waits for a busy task before it is dropped (recorded <c>skipped</c>, reason
    /// <c>trigger-expired</c>, and removed), counted from when this executor first saw it.
    /// </summary>
    public TimeSpan TriggerLife { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How long one ledger call may take while shutting down (the Consul client's request timeout).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Contends for <paramref name="ticket"/>'s slot; returns once the slot is decided (run here or elsewhere, skipped,
    /// recorded missed) or <paramref name="claiming"/> is cancelled (shutdown, logged: no new claim starts; a child already
    /// running is not affected, it is stopped through <see cref="RunningRuns"/>). A run record found at a later slot
    /// supersedes the slot: it is not marked (see <see cref="SlotMarker"/>). A claim of this node whose answer was lost and
    /// could not be read back is released (recorded <c>missed</c>, <c>claim-unconfirmed</c>) when the slot is given up.
    /// </summary>
    public async Task ContendAsync(TaskDefinition task, SlotTicket ticket, CancellationToken claiming)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(ticket);
        var began = time.GetUtcNow();
        try
        {
            var (rank, nodes, order) = await RankAsync(task, ticket.Slot, claiming).ConfigureAwait(false);
            var turn = SlotTurn.Of(rank, nodes, options.Contenders, options.RankDelay, ticket.Deadline - ticket.FireTime);
            var step = SlotTurn.Step(options.Contenders, options.RankDelay, ticket.Deadline - ticket.FireTime);
            var wait = SlotTurn.LookAt(turn, ticket.FireTime, ticket.Deadline, began, step) - time.GetUtcNow();
            if (rank > 0 && wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, time, claiming).ConfigureAwait(false);
            }

            if (turn.Backstop && !MustLook(task, order, rank))
            {
                return; // The watchers ranked above look; this node looks only when nodes ranked above it have left.
            }

            if (rank > 0 && await LooksClaimedAsync(task, ticket.Slot, claiming).ConfigureAwait(false))
            {
                return; // A claimed slot never becomes unclaimed: decided, for the price of one stale read.
            }

            if (turn.Backstop)
            {
                logger.Information("task {Namespace:l}/{Task:l}: slot {Slot} still unclaimed {Wait:0} ms after its fire time; node ranked {Rank} backs it up",
                    task.Id.Namespace, task.Id.Name, ticket.Slot, turn.Wait.TotalMilliseconds, rank + 1);
            }

            var decided = await FireUntilDeadlineAsync(task, ticket, rank, claiming).ConfigureAwait(false);
            if (!decided && !claiming.IsCancellationRequested)
            {
                await ResolveUnconfirmedAsync(task, ticket.Slot, claiming).ConfigureAwait(false);
                await RecordMissedAsync(task, [ticket.Slot], RunReasons.NotClaimedBeforeDeadline, claiming).ConfigureAwait(false);
            }
            else if (!decided)
            {
                await ReleaseAtShutdownAsync(task, ticket.Slot).ConfigureAwait(false);
                LogLeftUndecided(task, ticket.Slot);
            }
        }
        catch (OperationCanceledException) when (claiming.IsCancellationRequested)
        {
            await ReleaseAtShutdownAsync(task, ticket.Slot).ConfigureAwait(false);
            LogLeftUndecided(task, ticket.Slot); // Shutting down: no new claim.
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.Error(e, "task {Namespace:l}/{Task:l}: slot {Slot} left undecided here: unexpected failure; the other executors run or record it",
                task.Id.Namespace, task.Id.Name, ticket.Slot);
        }
    }

    /// <summary>
    /// Gives up on a claim of <paramref name="slot"/> whose answer was lost (<see cref="ClaimUnconfirmedException"/>): reads
    /// back and, when the stored record is that claim (held, with no child), releases it recorded <c>missed</c>
    /// (<see cref="SlotClaimer.ClaimUnconfirmedReason"/>), the lock freed (<see cref="SlotClaimer.ReleaseUnconfirmedAsync"/>).
    /// Retries while Consul cannot be reached. Nothing to do when no claim of this task is unconfirmed.
    /// </summary>
    private async Task ResolveUnconfirmedAsync(TaskDefinition task, long slot, CancellationToken cancellationToken)
    {
        var backoff = new Backoff(RetryMin, RetryMax);
        while (unconfirmed.TryGetValue(task.Id, out var pending) && pending.Slot <= slot && !contending.ContainsKey((task.Id, pending.Slot)))
        {
            try
            {
                await ReleaseUnconfirmedAsync(task, pending, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (ConsulException e)
            {
                logger.Debug("task {Namespace:l}/{Task:l}: slot {Slot}: the unconfirmed claim cannot be resolved yet ({Problem:l}); retrying",
                    task.Id.Namespace, task.Id.Name, pending.Slot, e.Message);
                await Task.Delay(backoff.Next(), time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>One try at <see cref="ResolveUnconfirmedAsync"/> while shutting down, bounded by the request timeout.</summary>
    private async Task ReleaseAtShutdownAsync(TaskDefinition task, long slot)
    {
        if (!unconfirmed.TryGetValue(task.Id, out var pending) || pending.Slot != slot)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(RequestTimeout);
            await ReleaseUnconfirmedAsync(task, pending, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConsulException or OperationCanceledException)
        {
            logger.Warning("task {Namespace:l}/{Task:l}: slot {Slot}: a claim whose answer was lost could not be read back nor released before shutdown "
                + "({Problem:l}); if it was stored, the lock frees when this executor's session ends and the slot, which did not run here, is recorded abandoned",
                task.Id.Namespace, task.Id.Name, slot, e.Message);
        }
    }

    private async Task ReleaseUnconfirmedAsync(TaskDefinition task, ClaimUnconfirmedException pending, CancellationToken cancellationToken)
    {
        var released = await ledger.ReleaseUnconfirmedAsync(task.Id, pending.Slot, pending.RunId, pending.SessionId, cancellationToken).ConfigureAwait(false);
        unconfirmed.TryRemove(new KeyValuePair<TaskId, ClaimUnconfirmedException>(task.Id, pending));
        if (released is null)
        {
            logger.Debug("task {Namespace:l}/{Task:l}: slot {Slot}: the claim whose answer was lost was not stored; nothing to release",
                task.Id.Namespace, task.Id.Name, pending.Slot);
            return;
        }

        logger.Warning("task {Namespace:l}/{Task:l}: slot {Slot} recorded missed ({Reason:l}): its claim was stored but its answer was lost and Consul "
            + "could not be read back in time; nothing ran, the lock is released", task.Id.Namespace, task.Id.Name, pending.Slot, SlotClaimer.ClaimUnconfirmedReason);
        notifier.SlotMissed(new MissedSlot(task.Id.Namespace, task.Id.Name, options.Node, pending.Slot, SlotClaimer.ClaimUnconfirmedReason, task.Notification));
    }

    /// <summary>Logs why this executor stops contending for an undecided slot: it is shutting down.</summary>
    private void LogLeftUndecided(TaskDefinition task, long slot)
    {
        logger.Information("task {Namespace:l}/{Task:l}: slot {Slot} left undecided here: the executor is shutting down; the other executors "
            + "run or record it, or the next executor to plan the task records it missed", task.Id.Namespace, task.Id.Name, slot);
    }

    /// <summary>
    /// True when a stale read of the run record (any server's copy, no leader round) holds <paramref name="slot"/> itself:
    /// claimed (or recorded) for sure, since the record only moves forward and never leaves a slot without its record.
    /// False when it looks unclaimed, when it holds a later slot (that one was claimed, not necessarily this one), or the
    /// read failed: the consistent read of the claim decides then, and records the slot missed if nothing else did.
    /// </summary>
    private async Task<bool> LooksClaimedAsync(TaskDefinition task, long slot, CancellationToken cancellationToken)
    {
        try
        {
            return await ledger.PeekRunAsync(task.Id, cancellationToken).ConfigureAwait(false) is { } record && record.Slot == slot;
        }
        catch (ConsulException)
        {
            return false;
        }
    }

    /// <summary>
    /// Records <paramref name="slots"/> missed, the first-ranked node first (the others wait their turn, at most K·δ, and
    /// find the markers with a stale read); a marker is written only after a consistent read found the slot unrecorded
    /// and the run record not holding it (<see cref="SlotMarker"/>). Only the executor whose marker write wins notifies.
    /// Retries while Consul is unreachable.
    /// </summary>
    public async Task RecordMissedAsync(TaskDefinition task, IReadOnlyList<long> slots, string reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(slots);
        if (slots.Count == 0)
        {
            return;
        }

        var calledAt = time.GetUtcNow();
        var calledTimestamp = time.GetTimestamp();
        var (rank, nodes, _) = await RankAsync(task, slots[^1], cancellationToken).ConfigureAwait(false);
        var turn = SlotTurn.Of(rank, nodes, options.Contenders, options.RankDelay, TimeSpan.Zero);
        if (rank > 0)
        {
            await Task.Delay(turn.Wait, time, cancellationToken).ConfigureAwait(false);
        }

        var backoff = new Backoff(RetryMin, RetryMax * 5);
        foreach (var slot in slots)
        {
            while (true)
            {
                try
                {
                    if (rank > 0 && await ledger.HasHistoryAsync(task.Id, slot, consistent: false, cancellationToken).ConfigureAwait(false))
                    {
                        break; // Recorded (or run) already: a stale read is enough to see it.
                    }

#if !DTASK_CHAOS_DEFECT_UNGATED_MARKERS
                    if (!await WaitMayWriteAsync(cancellationToken).ConfigureAwait(false))
                    {
                        return; // Still skewed: the other executors record the slots (or the next to plan them).
                    }
#endif

                    if (SetBackSince(calledAt, calledTimestamp) && slot > time.GetUtcNow().ToUnixTimeSeconds())
                    {
                        // Planned while this clock was ahead, and it has been set back since (the time of the call is
                        // taken before the rank wait and the reads, which may last past the set-back): the slot is not
                        // due yet, and a marker would say it was missed before it came.
                        logger.Warning("task {Namespace:l}/{Task:l}: slot {Slot} not recorded missed: this clock was set back and the slot is not due yet",
                            task.Id.Namespace, task.Id.Name, slot);
                        break;
                    }

                    if (!await ledger.HasHistoryAsync(task.Id, slot, consistent: true, cancellationToken).ConfigureAwait(false)
#if DTASK_CHAOS_DEFECT_UNGATED_MARKERS
                        ) // The chaos defect build only (configuration ChaosDefect): markers not gated by the skew guard, as before that fix.
#else
                        && skew.MayWrite) // A skewed clock decides nothing: the other executors record the slot.
#endif
                    {
                        var marked = await ledger.RecordMissedAsync(task.Id, slot, options.Node, reason, task.Spec.EffectiveHistory, cancellationToken).ConfigureAwait(false);
                        if (marked == MarkStatus.Written)
                        {
                            logger.Warning("task {Namespace:l}/{Task:l}: slot {Slot} recorded missed ({Reason:l})", task.Id.Namespace, task.Id.Name, slot, reason);
                            notifier.SlotMissed(new MissedSlot(task.Id.Namespace, task.Id.Name, options.Node, slot, reason, task.Notification));
                        }
                        else if (marked == MarkStatus.Superseded)
                        {
                            logger.Information("task {Namespace:l}/{Task:l}: slot {Slot} not recorded: the run record holds a later slot, which handled it",
                                task.Id.Namespace, task.Id.Name, slot);
                        }
                    }

                    break;
                }
                catch (ConsulException)
                {
                    await Task.Delay(backoff.Next(), time, cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// Records <c>missed</c> (<see cref="RunReasons.PassedOver"/>) the scheduled slots of <paramref name="task"/> between the
    /// freshly claimed record's <see cref="RunRecord.PreviousSlot"/> and its slot that have no record: the run record went
    /// past them, so they can never be claimed, and their contenders gave up or died before recording them. Slots before
    /// the task was last resumed (stamped in its spec, or as this executor saw it: <paramref name="notDueUntil"/>) are not
    /// due and are left alone; so are slots before the window its history keeps
    /// (<see cref="SlotMarker"/>). True when every slot was looked at; false when this clock may not write now or Consul
    /// failed (the finished record then keeps its <see cref="RunRecord.PreviousSlot"/> for the next claimer).
    /// </summary>
    private async Task<bool> RecordPassedOverAsync(TaskDefinition task, RunRecord claimed, DateTimeOffset? notDueUntil, CancellationToken cancellationToken)
    {
        if (claimed.PreviousSlot is not { } previous || previous >= claimed.Slot - 1)
        {
            return true;
        }

        var after = DateTimeOffset.FromUnixTimeSeconds(previous);
        foreach (var resumed in new[] { task.ResumedAt, notDueUntil })
        {
            if (resumed is { } r && r > after)
            {
                after = r;
            }
        }

        // The newest slots first, back to `after`, at most as many as history keeps (older ones lie before its window).
        var slots = new List<long>();
        var cursor = DateTimeOffset.FromUnixTimeSeconds(claimed.Slot).AddTicks(-1);
        while (slots.Count < Math.Max(1, task.Spec.EffectiveHistory) && task.Schedule.Previous(cursor) is { } instant && instant > after)
        {
            slots.Add(instant.ToUnixTimeSeconds());
            cursor = instant.AddTicks(-1);
        }

        slots.Reverse();
        foreach (var slot in slots)
        {
            if (await ledger.HasHistoryAsync(task.Id, slot, consistent: false, cancellationToken).ConfigureAwait(false))
            {
                continue; // Recorded (or run): a stale read is enough to see it.
            }

            if (!skew.MayWrite)
            {
                return false;
            }

            var marked = await ledger.RecordMissedAsync(task.Id, slot, options.Node, RunReasons.PassedOver, task.Spec.EffectiveHistory, cancellationToken).ConfigureAwait(false);
            if (marked == MarkStatus.Written)
            {
                logger.Warning("task {Namespace:l}/{Task:l}: slot {Slot} recorded missed ({Reason:l}: slot {Claimed} was claimed while it had no record)",
                    task.Id.Namespace, task.Id.Name, slot, RunReasons.PassedOver, claimed.Slot);
                notifier.SlotMissed(new MissedSlot(task.Id.Namespace, task.Id.Name, options.Node, slot, RunReasons.PassedOver, task.Notification));
            }
        }

        return true;
    }

    /// <summary>True when this wall clock moved back more than a few seconds against the monotonic clock since <paramref name="wall"/>.</summary>
    private bool SetBackSince(DateTimeOffset wall, long timestamp) =>
        time.GetUtcNow() < wall + time.GetElapsedTime(timestamp) - TimeSpan.FromSeconds(5);

    /// <summary>
    /// Whether this clock may write, waiting up to <see cref="ExecutorOptions.MarkerGuardWait"/> for the guard to allow it: a
    /// node just started (its peers' clocks not timed yet) or just set right records the slots it planned, instead of
    /// dropping markers that no other executor may be in a state to write. A skewed clock waits, then writes nothing.
    /// </summary>
    private async Task<bool> WaitMayWriteAsync(CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        while (!skew.MayWrite)
        {
            if (time.GetElapsedTime(started) >= options.MarkerGuardWait)
            {
                return false;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), time, cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    private async Task<bool> FireUntilDeadlineAsync(TaskDefinition task, SlotTicket ticket, int rank, CancellationToken claiming)
    {
        var backoff = new Backoff(RetryMin, RetryMax);
        var waitingLogged = false;
        var earlyLogged = false;
        string? stopAsked = null;
        // One run id for every try at this slot: when a claim's answer is lost (Consul failed while confirming it), the
        // next try recognises the stored claim as its own and runs it, instead of taking it for someone else's.
        var runId = SlotClaimer.NewRunId(ticket.Slot);
        contending[(task.Id, ticket.Slot)] = 0;
        try
        {
            while (true)
            {
                claiming.ThrowIfCancellationRequested();
                if (time.GetUtcNow() > ticket.Deadline)
                {
                    return false;
                }

                var early = ticket.FireTime - time.GetUtcNow();
                if (early > EarlyTolerance)
                {
                    // The wall clock moved back since the slot was planned: its instant is still to come by this clock.
                    // Nothing is claimed before it (the deadline, on the same clock, is further away too).
                    if (!earlyLogged)
                    {
                        logger.Warning("task {Namespace:l}/{Task:l}: slot {Slot} is {Early:0.0} s ahead of this clock, which moved back since the slot was "
                            + "planned; not claiming it before its time", task.Id.Namespace, task.Id.Name, ticket.Slot, early.TotalSeconds);
                        earlyLogged = true;
                    }

                    await Task.Delay(early < RetryMax ? early : RetryMax, time, claiming).ConfigureAwait(false);
                    continue;
                }

                var session = membership.ClaimSession;
                if (session is null || !skew.MayWrite)
                {
                    if (!waitingLogged)
                    {
                        logger.Debug("task {Namespace:l}/{Task:l}: slot {Slot} waits: {Why:l}", task.Id.Namespace, task.Id.Name, ticket.Slot,
                            session is null ? "no live session" : "clock skew beyond the limit");
                        waitingLogged = true;
                    }

                    await Task.Delay(RetryMin * 2, time, claiming).ConfigureAwait(false);
                    continue;
                }

                var request = FireRequest.FromSpec(task.Id, ticket.Slot, task.Spec, ticket.Deadline, task.Notification) with
                {
                    RunId = runId,
                    FireTime = ticket.FireTime,
                    Schedule = task.Schedule,
                };
                FireResult result;
                using (var stop = new StopRequest())
                {
                    runs.Add(task.Id, request.RunId!, stop);
                    try
                    {
                        if (unconfirmed.TryGetValue(task.Id, out var earlier) && earlier.Slot < ticket.Slot && !contending.ContainsKey((task.Id, earlier.Slot)))
                        {
                            // An earlier slot's claim may still hold the lock with no child: release it before claiming this one.
                            await ReleaseUnconfirmedAsync(task, earlier, claiming).ConfigureAwait(false);
                        }

                        var firing = new SlotFiring(ledger, session, options.Node, notifier, logger, runner, time)
                        {
                            PassedOver = (claimed, token) => RecordPassedOverAsync(task, claimed, ticket.NotDueUntil, token),
                            Claimed = () => Confirmed(task, runId),
                        };
                        result = await firing.FireAsync(request, stop, CancellationToken.None).ConfigureAwait(false);

                        // Read back consistently: a stored claim of ours was recognised (and ran), or none is stored.
                        Confirmed(task, runId);
                    }
                    catch (ConsulException e)
                    {
                        if (e is ClaimUnconfirmedException lost)
                        {
                            stats.CountClaim(request, null);
                            unconfirmed[task.Id] = lost; // The next try reads it back; giving up on the slot releases it.
                        }

                        // Only before a claim: once claimed, FireAsync decides the run's outcome itself.
                        logger.Debug("task {Namespace:l}/{Task:l}: slot {Slot}: Consul failed ({Problem:l}); retrying", task.Id.Namespace, task.Id.Name, ticket.Slot, e.Message);
                        await Task.Delay(backoff.Next(), time, claiming).ConfigureAwait(false);
                        continue;
                    }
                    finally
                    {
                        runs.Remove(request.RunId!);
                    }
                }

                stats.CountClaim(request, result);
                switch (result.Status)
                {
                    case FireStatus.Ran:
                        stats.CountRun();
                        await ForgetStopAsync(task, runId).ConfigureAwait(false);
                        return true;
                    case FireStatus.AlreadyClaimed when result.Current?.Slot > ticket.Slot:
                        // The run record is at a later slot: that one was claimed (or recorded), not this one, e.g. while
                        // this try waited for Consul past the deadline. This slot can never be claimed now; the caller
                        // leaves it unmarked (superseded by the later record, see SlotMarker), unless it has a record.
                        return false;
                    case FireStatus.AlreadyClaimed:
                        return true;
                    case FireStatus.Busy when task.Spec.EffectiveConcurrencyPolicy == ConcurrencyPolicy.Forbid:
                        return true;
                    case FireStatus.Busy:
                        if (result.Current is { } holder && stopAsked != holder.RunId && await AskToStopAsync(task, holder, claiming).ConfigureAwait(false))
                        {
                            stopAsked = holder.RunId;
                        }

                        await Task.Delay(RetryMin, time, claiming).ConfigureAwait(false);
                        continue;
                    default:
                        await Task.Delay(RetryMin * 2, time, claiming).ConfigureAwait(false);
                        continue;
                }
            }
        }
        finally
        {
            contending.TryRemove((task.Id, ticket.Slot), out _);
            if (stopAsked is not null)
            {
                await ClearStopAsync(task, stopAsked).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Forgets the unconfirmed claim of run <paramref name="runId"/>: its slot is now claimed (and runs) or known not
    /// stored. Done as soon as the claim is confirmed, before the child starts, so that no later slot takes that live
    /// claim for one with no child and releases it.
    /// </summary>
    private void Confirmed(TaskDefinition task, string runId)
    {
        if (unconfirmed.TryGetValue(task.Id, out var mine) && mine.RunId == runId)
        {
            unconfirmed.TryRemove(new KeyValuePair<TaskId, ClaimUnconfirmedException>(task.Id, mine));
        }
    }

    /// <summary>
    /// Whether this backstop, ranked <paramref name="rank"/> in <paramref name="order"/>, looks at the slot: when fewer than
    /// K contenders and <see cref="SlotTurn.Watchers"/> watchers ranked above it are known to be up: registered, not
    /// skewed, with a clock stamp younger than <see cref="ClockSkewGuard.StampMaxAge"/> (a dead node's registration
    /// expires one session TTL after it dies; a hung one stops stamping). So the reads per slot do not grow with the fleet,
    /// and a slot whose contenders and watchers are all gone is still looked at by the next live ranks.
    /// </summary>
    private bool MustLook(TaskDefinition task, IReadOnlyList<string> order, int rank)
    {
        // A node counts when its registration carries a recent clock stamp (every executor refreshes it every
        // StampInterval): a registration without one, or with an old one, is not known to be looking.
        var now = time.GetUtcNow();
        var live = view.Nodes
            .Where(n => task.Selects(n.Labels) && n.State != NodeRecord.ClockSkewed && n.Clock is { } stamp && (now - stamp).Duration() <= ClockSkewGuard.StampMaxAge + skew.Limit)
            .Select(n => n.Node).ToHashSet(StringComparer.Ordinal);
        var above = 0;
        for (var i = 0; i < rank && i < order.Count; i++)
        {
            above += live.Contains(order[i]) ? 1 : 0;
        }

        return above < options.Contenders + SlotTurn.Watchers(options.Contenders);
    }

    /// <summary>The rank of this node for the slot among the live nodes the task selects (this node always counts), their number, and their order.</summary>
    private async Task<(int Rank, int Nodes, IReadOnlyList<string> Order)> RankAsync(TaskDefinition task, long slot, CancellationToken cancellationToken)
    {
        var eligible = view.Nodes.Where(n => task.Selects(n.Labels) && n.State != NodeRecord.ClockSkewed).Select(n => n.Node).Append(options.Node);
        IReadOnlyList<string> order;
        if (task.Spec.EffectivePlacement == Placement.RoundRobin)
        {
            IReadOnlyDictionary<string, long> lastRan;
            try
            {
                // A run still going took its turn too (under Allow the next slot may come before it ends).
                var history = await ledger.ReadHistoryAsync(task.Id, cancellationToken).ConfigureAwait(false);
                var current = await ledger.PeekRunAsync(task.Id, cancellationToken).ConfigureAwait(false);
                lastRan = SlotRanking.LastRan(current is { IsRunning: true } ? history.Append(current) : history);
            }
            catch (ConsulException)
            {
                lastRan = new Dictionary<string, long>();
            }

            order = SlotRanking.ByLeastRecent(task.Id, slot, eligible, lastRan);
        }
        else
        {
            order = SlotRanking.ByHash(task.Id, slot, eligible);
        }

        return (Math.Max(0, order.ToList().IndexOf(options.Node)), order.Count, order);
    }

    /// <summary>
    /// Writes the stop request of the holder's run, <c>control/&lt;ns&gt;/&lt;name&gt;/stop/&lt;runId&gt;</c>, with CAS 0
    /// (idempotent: the other contenders of the same slot find it there). Pending triggers do not matter: every request
    /// has its own key. True when the request is there now.
    /// </summary>
    private async Task<bool> AskToStopAsync(TaskDefinition task, RunRecord holder, CancellationToken cancellationToken)
    {
        try
        {
            var request = new ControlRequest
            {
                Action = ControlAction.Stop,
                Id = Guid.NewGuid().ToString("N"),
                RequestedAt = time.GetUtcNow(),
                RequestedBy = options.Node,
                RunId = holder.RunId,
            };
            if (await ledger.RequestStopAsync(task.Id, request, cancellationToken).ConfigureAwait(false))
            {
                logger.Information("task {Namespace:l}/{Task:l}: Replace: asked node {Holder:l} to stop run {RunId:l} ({What:l})",
                    task.Id.Namespace, task.Id.Name, holder.Node, holder.RunId, holder.IsManual ? "manual run " + holder.Trigger : "slot " + holder.Slot);
                return true;
            }

            return await ledger.HasStopRequestAsync(task.Id, holder.RunId, cancellationToken).ConfigureAwait(false);
        }
        catch (ConsulException)
        {
            return false;
        }
    }

    /// <summary>Removes the stop request of <paramref name="runId"/> (the run is over, or this contender is done with it).</summary>
    private async Task ClearStopAsync(TaskDefinition task, string runId)
    {
        try
        {
            using var timeout = new CancellationTokenSource(RequestTimeout);
            await ledger.ClearStopAsync(task.Id, runId, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConsulException or OperationCanceledException)
        {
            // The holder deletes it too once it stopped; a stale stop request names a run that is over and is harmless.
        }
    }

    /// <summary>A run of ours is over: a stop request left for it (seen in the view) is removed, so stale ones do not pile up.</summary>
    private Task ForgetStopAsync(TaskDefinition task, string runId) =>
        view.Controls.Values.Any(c => c.Task == task.Id && c.Action == ControlAction.Stop && c.Id == runId) ? ClearStopAsync(task, runId) : Task.CompletedTask;

    /// <summary>
    /// Contends for the manual run of <paramref name="trigger"/>, until it is run (here or elsewhere: the claim consumes the
    /// trigger's key, so exactly one node runs it), dropped, or <paramref name="claiming"/> is cancelled. A manual run is
    /// not a slot: the run record keeps its slot, so no scheduled slot is moved or superseded, and a busy task is not a
    /// reason to skip it: it waits (under <c>Replace</c> it asks a scheduled run claimed before the trigger was written to
    /// stop, like a new run would; a later or manual holder is waited for). It never blocks a scheduled slot either: a slot whose fire time comes while a manual run
    /// holds the lock applies the task's policy to it like to any run. A trigger still waiting after
    /// <see cref="TriggerLife"/> is dropped: recorded <c>skipped</c> (<c>trigger-expired</c>) and removed, in one
    /// transaction that fails if anyone claimed it first.
    /// </summary>
    public async Task ContendManualAsync(TaskDefinition task, ManualTrigger trigger, CancellationToken claiming)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(trigger);
        var seen = time.GetUtcNow();
        var expiry = seen + TriggerLife;
        // How long it waited is measured on the monotonic clock: a wall clock that jumps ahead must not expire it.
        var seenAt = time.GetTimestamp();
        var runId = SlotClaimer.NewRunId(trigger.Sequence);
        string? stopAsked = null;
        var backoff = new Backoff(RetryMin, RetryMax);
        try
        {
            var (rank, nodes, _) = await RankAsync(task, trigger.Sequence, claiming).ConfigureAwait(false);
            var turn = SlotTurn.Of(rank, nodes, options.Contenders, options.RankDelay, ManualTurnWindow);
            if (rank > 0)
            {
                await Task.Delay(turn.Wait, time, claiming).ConfigureAwait(false);
            }

            while (true)
            {
                claiming.ThrowIfCancellationRequested();
                if (time.GetElapsedTime(seenAt) > TriggerLife)
                {
                    if (!skew.MayWrite)
                    {
                        // A clock beyond the skew limit decides nothing, a drop included: the other executors decide.
                        await Task.Delay(RetryMin * 2, time, claiming).ConfigureAwait(false);
                        continue;
                    }

                    await DropTriggerAsync(task, trigger, claiming).ConfigureAwait(false);
                    return;
                }

                var session = membership.ClaimSession;
                if (session is null || !skew.MayClaim)
                {
                    await Task.Delay(RetryMin * 2, time, claiming).ConfigureAwait(false);
                    continue;
                }

                var request = FireRequest.FromSpec(task.Id, trigger.Sequence, task.Spec, expiry, task.Notification) with
                {
                    RunId = runId,
                    FireTime = seen,
                    Trigger = trigger,
                };
                FireResult result;
                using (var stop = new StopRequest())
                {
                    runs.Add(task.Id, runId, stop);
                    try
                    {
                        var firing = new SlotFiring(ledger, session, options.Node, notifier, logger, runner, time);
                        result = await firing.FireAsync(request, stop, CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (ConsulException e)
                    {
                        logger.Debug("task {Namespace:l}/{Task:l}: trigger {Id:l}: Consul failed ({Problem:l}); retrying", task.Id.Namespace, task.Id.Name, trigger.Id, e.Message);
                        await Task.Delay(backoff.Next(), time, claiming).ConfigureAwait(false);
                        continue;
                    }
                    finally
                    {
                        runs.Remove(runId);
                    }
                }

                backoff.Reset();
                stats.CountClaim(request, result);
                switch (result.Status)
                {
                    case FireStatus.Ran:
                        stats.CountRun();
                        await ForgetStopAsync(task, runId).ConfigureAwait(false);
                        return;
                    case FireStatus.AlreadyClaimed:
                        return; // Run (or dropped) by someone: the key is gone.
                    case FireStatus.Busy when task.Spec.EffectiveConcurrencyPolicy == ConcurrencyPolicy.Replace
                        && await EarlierScheduledHolderAsync(task, trigger, claiming).ConfigureAwait(false) is { } holder:
                        if (stopAsked != holder.RunId && await AskToStopAsync(task, holder, claiming).ConfigureAwait(false))
                        {
                            stopAsked = holder.RunId;
                        }

                        await Task.Delay(RetryMin, time, claiming).ConfigureAwait(false);
                        continue;
                    case FireStatus.Busy:
                        await WaitForRunRecordChangeAsync(task, expiry, claiming).ConfigureAwait(false);
                        continue;
                    default:
                        await Task.Delay(RetryMin * 2, time, claiming).ConfigureAwait(false);
                        continue;
                }
            }
        }
        catch (OperationCanceledException) when (claiming.IsCancellationRequested)
        {
            logger.Information("task {Namespace:l}/{Task:l}: trigger {Id:l} left pending here: the executor is shutting down (or the task was removed)",
                task.Id.Namespace, task.Id.Name, trigger.Id);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.Error(e, "task {Namespace:l}/{Task:l}: trigger {Id:l} left pending here: unexpected failure; the other executors run it", task.Id.Namespace, task.Id.Name, trigger.Id);
        }
        finally
        {
            if (stopAsked is not null)
            {
                await ClearStopAsync(task, stopAsked).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The running scheduled run that <c>Replace</c> lets <paramref name="trigger"/> stop: one claimed before the trigger
    /// was written (its claim's index, the fence, is below the trigger key's CreateIndex: Raft order, no clock). A run
    /// claimed after the trigger, or a manual run, is waited for, so a trigger never stops a slot that came after it.
    /// </summary>
    private async Task<RunRecord?> EarlierScheduledHolderAsync(TaskDefinition task, ManualTrigger trigger, CancellationToken cancellationToken)
    {
        try
        {
            var stored = await ledger.ReadRunAsync(task.Id, cancellationToken).ConfigureAwait(false);
            return stored.Record is { IsRunning: true, IsManual: false } holder
                && (holder.Fence != 0 ? (ulong)holder.Fence : stored.ModifyIndex) < trigger.CreateIndex ? holder : null;
        }
        catch (ConsulException)
        {
            return null;
        }
    }

    /// <summary>Waits until the run record changes (a blocking query on it), at most 30 s and not past <paramref name="until"/>.</summary>
    private async Task WaitForRunRecordChangeAsync(TaskDefinition task, DateTimeOffset until, CancellationToken cancellationToken)
    {
        var wait = until - time.GetUtcNow();
        wait = wait < TimeSpan.FromSeconds(30) ? wait : TimeSpan.FromSeconds(30);
        if (wait <= TimeSpan.Zero)
        {
            return;
        }

        try
        {
            await ledger.WaitForRunChangeAsync(task.Id, wait, cancellationToken).ConfigureAwait(false);
        }
        catch (ConsulException)
        {
            await Task.Delay(RetryMax, time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Drops a trigger that waited its whole life: one transaction removes its key (at the index it was created with:
    /// it fails if it was claimed meanwhile) and writes its history entry, <c>skipped</c> with reason <c>trigger-expired</c>.
    /// </summary>
    private async Task DropTriggerAsync(TaskDefinition task, ManualTrigger trigger, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var record = new RunRecord
        {
            Slot = 0,
            RunId = SlotClaimer.NewRunId(trigger.Sequence),
            Node = options.Node,
            State = RunState.Skipped,
            Reason = RunReasons.TriggerExpired(TriggerLife),
            StartedAt = now,
            FinishedAt = now,
            Attempt = 0,
            Trigger = trigger.Id,
            TriggerIndex = trigger.Sequence,
        };
        try
        {
            if (await ledger.DropTriggerAsync(task.Id, trigger, record, cancellationToken).ConfigureAwait(false))
            {
                logger.Warning("task {Namespace:l}/{Task:l}: trigger {Id:l} dropped: {Reason:l}", task.Id.Namespace, task.Id.Name, trigger.Id, record.Reason);
            }
        }
        catch (ConsulException e)
        {
            logger.Warning("task {Namespace:l}/{Task:l}: could not drop trigger {Id:l} ({Problem:l}); the other executors do", task.Id.Namespace, task.Id.Name, trigger.Id, e.Message);
        }
    }
}
