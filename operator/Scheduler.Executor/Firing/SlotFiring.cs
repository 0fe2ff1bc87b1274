using Dtask.Consul.Errors;
using Dtask.Consul.Locking;
using Dtask.Core.Durations;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Ledger;
using Dtask.Executor.Logging;
using Dtask.Executor.Notifications;
using Dtask.Executor.Processes;
using Serilog;

namespace Dtask.Executor.Firing;

/// <summary>
/// Fires one slot of one task on this executor, end to end, over the task ledger (<see cref="ITaskLedger"/>): claim, run
/// the child (<see cref="ChildRunner"/>) while watching the lock (<see cref="ITaskLedger.WatchLock"/>), retry failed
/// attempts within the deadline keeping the lock, finish, then notify. Under <c>Forbid</c> a busy slot is recorded
/// skipped. Used by <c>dtask run</c> for its single slot and by the executor
/// daemon for every due slot.
/// </summary>
/// <remarks>
/// Writes per fired slot: one claim transaction and one finish transaction (history trimming rides in the finish),
/// plus one per retry. Notifications go out after the record is written and never delay it.
/// </remarks>
public sealed class SlotFiring
{
    private readonly ITaskLedger ledger;
    private readonly ILedgerSession session;
    private readonly string node;
    private readonly IRunNotifier notifier;
    private readonly ILogger logger;
    private readonly ChildRunner runner;
    private readonly TimeProvider time;

    /// <summary>Creates the firing of this executor.</summary>
    /// <param name="ledger">The task ledger (claims, run records, history, locks).</param>
    /// <param name="session">The executor's session (held by every lock it takes).</param>
    /// <param name="node">This node's name.</param>
    /// <param name="notifier">Where run events go.</param>
    /// <param name="logger">The executor's logger (child output is forwarded to it).</param>
    /// <param name="runner">Runs children; a default one when null.</param>
    /// <param name="time">The clock.</param>
    public SlotFiring(ITaskLedger ledger, ILedgerSession session, string node, IRunNotifier notifier, ILogger logger,
        ChildRunner? runner = null, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        this.ledger = ledger ?? throw new ArgumentNullException(nameof(ledger));
        this.session = session ?? throw new ArgumentNullException(nameof(session));
        this.notifier = notifier ?? throw new ArgumentNullException(nameof(notifier));
        this.logger = logger ?? throw new ArgumentNullException(nameof(logger));
        this.node = node;
        this.time = time ?? TimeProvider.System;
        this.runner = runner ?? new ChildRunner(time: this.time);
    }

    /// <summary>
    /// How long a run goes before its lock key is watched (<see cref="LockKeyWatch"/>). Until then only the loss of the
    /// session stops the child; the finish transaction checks the lock whatever happens. A run shorter than this costs
    /// no watch request, which keeps Consul's and the executor's work per fire down when many slots fire at once.
    /// </summary>
    public TimeSpan LockWatchDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long to wait before claiming again while lock-delay is in force.</summary>
    public TimeSpan LockDelayRetry { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Looks at the slots a fresh claim passed over (between the claimed record's <see cref="RunRecord.PreviousSlot"/> and
    /// its slot) and records those without a record <c>missed</c>; true when it looked at every one. Started as soon as a
    /// scheduled slot is claimed, beside the child, and awaited (at most <see cref="PassedOverWait"/> after the child
    /// ends) before the finish: when it is done the finished record says so (no <see cref="RunRecord.PreviousSlot"/>);
    /// otherwise the next claimer looks again. None: the record keeps its <see cref="RunRecord.PreviousSlot"/>.
    /// </summary>
    public Func<RunRecord, CancellationToken, Task<bool>>? PassedOver { get; init; }

    /// <summary>Called once the slot is claimed, before its child starts.</summary>
    public Action? Claimed { get; init; }

    /// <summary>How long after the child's end the finish waits for <see cref="PassedOver"/>.</summary>
    public TimeSpan PassedOverWait { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Claims and runs the slot. <paramref name="stop"/> stops the child early (Replace, shutdown); its reason is
    /// recorded. <paramref name="cancellationToken"/> cancels Consul calls (not the child: use <paramref name="stop"/>).
    /// </summary>
    /// <remarks>
    /// Once the slot is claimed, its outcome is decided here whatever Consul does: the answer is <see cref="FireStatus.Ran"/>
    /// and no <see cref="Consul.Errors.ConsulException"/> escapes; <see cref="FireResult.Finish"/> says whether the record
    /// could be written (see <see cref="RunRecorder"/>). Under <c>Forbid</c>, a busy slot is marked skipped only while
    /// the run record is as read when deciding; when it changed meanwhile (the run finished), the claim is tried again.
    /// </remarks>
    /// <exception cref="Consul.Errors.ConsulException">Consul could not be reached or refused before the slot was claimed.</exception>
    public async Task<FireResult> FireAsync(FireRequest request, StopRequest? stop = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        RunRecord? abandonedOnTheWay = null;
        while (true)
        {
            var claim = await ClaimAsync(request, stop, cancellationToken).ConfigureAwait(false);
            abandonedOnTheWay ??= claim.Abandoned;
            if (claim.Abandoned is { } abandoned)
            {
                logger.Warning("task {Namespace:l}/{Task:l}: slot {AbandonedSlot} of node {AbandonedNode:l} was abandoned (its session is gone)",
                    request.Task.Namespace, request.Task.Name, abandoned.Slot, abandoned.Node);
            }

            switch (claim.Status)
            {
                case ClaimStatus.Claimed:
                    Claimed?.Invoke();
                    return await RunClaimedAsync(request, claim.Claim!, stop, cancellationToken).ConfigureAwait(false) with { Abandoned = abandonedOnTheWay };
                case ClaimStatus.AlreadyClaimed:
                    return new FireResult(FireStatus.AlreadyClaimed, null, claim.Current, claim.Detail) { Abandoned = abandonedOnTheWay };
                case ClaimStatus.Busy when request.Concurrency == ConcurrencyPolicy.Forbid && request.Trigger is null:
                    var marked = await ledger.RecordSkippedAsync(request.Task, request.Slot, node, RunReasons.StillRunning, claim.CurrentIndex, cancellationToken).ConfigureAwait(false);
                    if (marked == MarkStatus.RecordChanged && time.GetUtcNow() < request.Deadline && stop?.IsRequested != true)
                    {
                        continue; // The run finished (or a claim came in) after the record was read: decide again.
                    }

                    if (marked == MarkStatus.Written)
                    {
                        logger.Information("task {Namespace:l}/{Task:l}: slot {Slot} skipped: {Detail:l}", request.Task.Namespace, request.Task.Name, request.Slot, claim.Detail);
                    }

                    return marked == MarkStatus.RecordChanged
                        ? new FireResult(FireStatus.NotClaimed, null, claim.Current, "the run record kept changing until the deadline") { Abandoned = abandonedOnTheWay }
                        : new FireResult(FireStatus.Busy, null, claim.Current, claim.Detail) { Marked = marked == MarkStatus.Written, Abandoned = abandonedOnTheWay };
                case ClaimStatus.Busy:
                    return new FireResult(FireStatus.Busy, null, claim.Current, claim.Detail) { Abandoned = abandonedOnTheWay };
                default:
                    return new FireResult(FireStatus.NotClaimed, null, claim.Current, claim.Detail) { Abandoned = abandonedOnTheWay };
            }
        }
    }

    /// <summary>Claims, waiting out lock-delay within the deadline.</summary>
    private async Task<ClaimOutcome> ClaimAsync(FireRequest request, StopRequest? stop, CancellationToken cancellationToken)
    {
        RunRecord? abandonedOnTheWay = null;
        while (true)
        {
            var claim = request.Trigger is { } trigger
                ? await ledger.ClaimManualAsync(request.Task, trigger, node, session.Id, request.RunId ?? SlotClaimer.NewRunId(trigger.Sequence), cancellationToken).ConfigureAwait(false)
                : await ledger.ClaimAsync(request.Task, request.Slot, node, session.Id, request.RunId, cancellationToken).ConfigureAwait(false);
            abandonedOnTheWay ??= claim.Abandoned;
            claim = claim with { Abandoned = abandonedOnTheWay };
            if (claim.Status != ClaimStatus.LockDelay || time.GetUtcNow() + LockDelayRetry >= request.Deadline || stop?.IsRequested == true)
            {
                return claim;
            }

            await Task.Delay(LockDelayRetry, time, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<FireResult> RunClaimedAsync(FireRequest request, SlotClaim claim, StopRequest? callerStop, CancellationToken cancellationToken)
    {
        await using var watch = ledger.WatchLock(request.Task, session, LockWatchDelay);
        using var stop = new StopRequest();
        using var onLost = stop.StopWhen(() => LossReason(watch) ?? StopReason.LockLost(), watch.Lost);
        using var onCaller = callerStop is null ? default : stop.StopWhen(() => StopReason.StoppedBy(callerStop.Reason), callerStop.Token);

        // A manual run is not a slot: its DTASK_SLOT is the instant it was claimed, and DTASK_TRIGGER names its request.
        var slot = request.Trigger is null ? request.Slot : (claim.Record.StartedAt ?? time.GetUtcNow()).ToUnixTimeSeconds();
        var slotInstant = request.FireTime ?? DateTimeOffset.FromUnixTimeSeconds(slot);
        var run = new SlotRun(request.Task, slot, claim.RunId);
        var context = RunContext.Of(run, node, request.Command.Display, request.Notify);
        var runLogger = logger.ForRun(context);
        if (request.Trigger is { } manual)
        {
            runLogger.Information("claimed manual run of trigger {Trigger:l} (#{Sequence}, fence {Fence}): {Command:l}", manual.Id, manual.Sequence, claim.Fence.Value, request.Command.Display);
        }
        else
        {
            runLogger.Information("claimed slot {Slot} (fence {Fence}): {Command:l}", request.Slot, claim.Fence.Value, request.Command.Display);
        }

        // The slots this claim passed over, looked at beside the child (never delaying it).
        using var passedOverStop = request.Trigger is null && PassedOver is not null && claim.Record.PreviousSlot is not null ? new CancellationTokenSource() : null;
        var passedOver = passedOverStop is null ? null : LookAtPassedOverAsync(request.Task, PassedOver!, claim.Record, passedOverStop.Token);
        var attempt = 1;
        var backoff = new Backoff(request.RetryBackoff, TimeSpan.MaxValue);
        ChildOutcome outcome;
        while (true)
        {
            // This executor was paused (or could not renew) since the claim, past the session's renewal deadline: Consul
            // may have ended the session and another node may hold the lock and run a later slot by now. Asked again by
            // the runner right before the fork, after its preparations (a pause may fall between them).
            StopReason? LeaseRanOut()
            {
                if (session.IsPastDeadline && !stop.IsRequested)
                {
                    stop.Stop(StopReason.SessionLost("the lease ran out before the child started (no successful renewal before the renewal deadline)"));
                }

                return stop.Reason;
            }

            LeaseRanOut();

            var identity = RunIdentity.Of(run, node, claim.Fence.AsLong) with { Trigger = request.Trigger?.Id };
            var forwarder = new ChildOutputForwarder(logger, context);
            var attemptContext = context;
            outcome = await runner.RunAsync(request.Command, identity, forwarder, stop, start =>
            {
                attemptContext = context with { FireDelay = start.StartedAt - slotInstant };
                runLogger.Information("child {Pid} started, fire delay {FireDelayMs:0.0} ms", start.ProcessGroupId, attemptContext.FireDelay.TotalMilliseconds);
                notifier.RunStarted(attemptContext);
            }, LeaseRanOut).ConfigureAwait(false);
            context = attemptContext;

            var retryable = outcome.State is RunState.Failed or RunState.TimedOut && outcome.StoppedReason is null;
            if (!retryable || attempt > request.RetryLimit || time.GetUtcNow() + backoff.Current >= request.Deadline)
            {
                break;
            }

            runLogger.Warning("attempt {Attempt} ended: {Reason:l}; retrying in {Backoff:l}", attempt, outcome.Reason, DurationText.Of(backoff.Current));
            try
            {
                await Task.Delay(backoff.Next(), time, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break; // Stopped while waiting: the last attempt's outcome stands, recorded below with the stop reason.
            }

            SlotClaim? next;
            try
            {
                next = await ledger.StartAttemptAsync(claim, attempt + 1, watch.Lost, cancellationToken).ConfigureAwait(false);
            }
            catch (ConsulException e)
            {
                runLogger.Warning("attempt {Attempt} could not be recorded ({Problem:l}); no retry, the run ends with attempt {Last}", attempt + 1, e.Message, attempt);
                break;
            }

            if (next is null)
            {
                stop.Stop(LossReason(watch) ?? StopReason.LockLost("the lock was no longer held when retrying"));
                break;
            }

            claim = next;
            attempt++;
        }

        // A session past its renewal deadline when the child ended (this executor was paused, or could not renew): its
        // watchdog stopped the child because the lease ran out, so the run is lost, not failed by a signal of its own.
        var stopReason = stop.Reason ?? (session.IsPastDeadline && !watch.IsLost
            ? StopReason.SessionLost("the lease ran out while the child ran (no successful renewal before the renewal deadline)") : null);
        var lockLost = watch.IsLost || session.IsPastDeadline || stop.Reason?.Cause == StopCause.LockLost;
        var final = FinalRecord(claim, outcome, attempt, stopReason ?? LossReason(watch), lockLost);
        if (passedOver is not null)
        {
            passedOverStop!.CancelAfter(PassedOverWait);
            if (await passedOver.ConfigureAwait(false))
            {
                final = final with { PreviousSlot = null }; // Every slot it passed over has a record now.
            }
        }
        var finish = await ledger.FinishAsync(claim with { Schedule = request.Schedule }, final, request.HistoryLimit, watch.Lost, cancellationToken).ConfigureAwait(false);
        switch (finish.Status)
        {
            case FinishStatus.LockLost when final.State != RunState.Lost:
                runLogger.Warning("the lock was lost before the run could be recorded; its record went to history only");
                break;
            case FinishStatus.Unrecorded:
                runLogger.Error("slot {Slot} ({State:l}) could not be recorded: Consul did not answer before the lock was lost ({Lost:l}; last failure: {Problem:l}); "
                    + "the lock frees with the session and the next claimer records the run abandoned",
                    slot, final.State.ToString(), watch.LostReason ?? "lock lost", finish.Problem ?? "none");
                break;
            case FinishStatus.Refused:
                runLogger.Error("slot {Slot} ({State:l}) could not be recorded: Consul refused the finish ({Problem:l}); the lock was released{History:l}, "
                    + "and the next claimer records the run abandoned",
                    slot, final.State.ToString(), finish.Problem ?? "unknown", finish.HistoryWritten ? " and the run's record went to history" : "");
                break;
        }

        runLogger.ForContext("DurationMs", Math.Round(outcome.Duration.TotalMilliseconds, 1))
            .Information("slot {Slot} {State:l} ({Reason:l}) after {Duration:l}", slot, final.State.ToString(), final.Reason ?? "exit 0", DurationText.Of(outcome.Duration));
        if (final.State == RunState.Lost)
        {
            notifier.LockLost(context, final.Reason ?? "lock-lost");
        }
        else
        {
            var result = final.State switch
            {
                RunState.Succeeded => RunResult.Succeeded,
                RunState.TimedOut => RunResult.TimedOut,
                _ => RunResult.Failed,
            };
            notifier.RunFinished(context, new RunOutcome(result, outcome.Duration, outcome.NeverStarted ? null : outcome.ExitCode, outcome.OutputTail));
        }

        return new FireResult(FireStatus.Ran, final, null, $"ran slot {slot}: {final.State}") { Outcome = outcome, Finish = finish };
    }

    /// <summary>
    /// The reason recorded for a lost lock: <c>session-lost: …</c> when the executor's session went first,
    /// <c>lock-lost: …</c> when the key itself showed it; null while the lock is held.
    /// </summary>
    private static StopReason? LossReason(ILockWatch watch) =>
        watch.LostReason is { } reason ? (watch.LostWithSession ? StopReason.SessionLost(reason) : StopReason.LockLost(reason)) : null;

    private async Task<bool> LookAtPassedOverAsync(TaskId task, Func<RunRecord, CancellationToken, Task<bool>> lookAt, RunRecord claimed, CancellationToken cancellationToken)
    {
        try
        {
            return await lookAt(claimed, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConsulException or OperationCanceledException)
        {
            logger.Debug("task {Namespace:l}/{Task:l}: the slots before slot {Slot} were not all looked at ({Problem:l}); the next claimer looks again",
                task.Namespace, task.Name, claimed.Slot, e.Message);
            return false;
        }
    }

    private RunRecord FinalRecord(SlotClaim claim, ChildOutcome outcome, int attempt, StopReason? stopReason, bool lockLost)
    {
        var state = lockLost ? RunState.Lost
            : stopReason is not null && outcome.StoppedReason is not null ? RunState.Failed
            : outcome.State;
        return claim.Record with
        {
            State = state,
            Attempt = attempt,
            Fence = claim.Fence.AsLong,
            StartedAt = outcome.StartedAt ?? claim.Record.StartedAt,
            FinishedAt = time.GetUtcNow(),
            ExitCode = outcome.NeverStarted ? null : outcome.ExitCode,
            Reason = lockLost ? (stopReason ?? outcome.StoppedReason ?? StopReason.LockLost()).Text : outcome.Reason,
            OutputTail = outcome.OutputTail.Length == 0 ? null : outcome.OutputTail,
        };
    }
}
