using Dtask.Consul;
using Dtask.Consul.Locking;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Logging;
using Dtask.Executor.Notifications;
using Dtask.Executor.Processes;
using Serilog;

namespace Dtask.Executor.Firing;

/// <summary>
/// Fires one slot of one task on this executor, end to end: claim (<see cref="SlotClaimer"/>), run the child
/// (<see cref="ChildRunner"/>) while watching the lock (<see cref="LockKeyWatch"/>), retry failed attempts within the
/// deadline keeping the lock, finish (<see cref="RunRecorder"/>), then notify. Under <c>Forbid</c> a busy slot is
/// recorded skipped (<see cref="SlotMarker"/>). Used by <c>dtask run</c> for its single slot and by the executor
/// daemon for every due slot.
/// </summary>
/// <remarks>
/// Writes per fired slot: one claim transaction and one finish transaction (history trimming rides in the finish),
/// plus one per retry. Notifications go out after the record is written and never delay it.
/// </remarks>
public sealed class SlotFiring
{
    private readonly RunStateStore store;
    private readonly SessionRenewal session;
    private readonly string node;
    private readonly IRunNotifier notifier;
    private readonly ILogger logger;
    private readonly ChildRunner runner;
    private readonly TimeProvider time;
    private readonly SlotClaimer claimer;
    private readonly RunRecorder recorder;
    private readonly SlotMarker marker;

    /// <summary>Creates the firing of this executor.</summary>
    /// <param name="client">The Consul client.</param>
    /// <param name="layout">The KV layout.</param>
    /// <param name="session">The executor's session (held by every lock it takes).</param>
    /// <param name="node">This node's name.</param>
    /// <param name="notifier">Where run events go.</param>
    /// <param name="logger">The executor's logger (child output is forwarded to it).</param>
    /// <param name="runner">Runs children; a default one when null.</param>
    /// <param name="time">The clock.</param>
    public SlotFiring(ConsulClient client, KvLayout layout, SessionRenewal session, string node, IRunNotifier notifier, ILogger logger,
        ChildRunner? runner = null, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        this.session = session ?? throw new ArgumentNullException(nameof(session));
        this.notifier = notifier ?? throw new ArgumentNullException(nameof(notifier));
        this.logger = logger ?? throw new ArgumentNullException(nameof(logger));
        this.node = node;
        this.time = time ?? TimeProvider.System;
        this.runner = runner ?? new ChildRunner(time: this.time);
        store = new RunStateStore(client, layout);
        claimer = new SlotClaimer(store, this.time);
        recorder = new RunRecorder(store, this.time);
        marker = new SlotMarker(store, this.time);
    }

    /// <summary>How long to wait before claiming again while lock-delay is in force.</summary>
    public TimeSpan LockDelayRetry { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Claims and runs the slot. <paramref name="stop"/> stops the child early (Replace, shutdown); its reason is
    /// recorded. <paramref name="cancellationToken"/> cancels Consul calls (not the child: use <paramref name="stop"/>).
    /// </summary>
    /// <exception cref="Consul.Errors.ConsulException">Consul could not be reached or refused (before a claim; after one, the run is finished as well as possible).</exception>
    public async Task<FireResult> FireAsync(FireRequest request, StopRequest? stop = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ClaimOutcome claim;
        RunRecord? abandonedOnTheWay = null;
        while (true)
        {
            claim = await claimer.ClaimAsync(request.Task, request.Slot, node, session.Id, request.RunId, cancellationToken).ConfigureAwait(false);
            abandonedOnTheWay ??= claim.Abandoned;
            claim = claim with { Abandoned = abandonedOnTheWay };
            if (claim.Status != ClaimStatus.LockDelay || time.GetUtcNow() + LockDelayRetry >= request.Deadline || stop?.IsRequested == true)
            {
                break;
            }

            await Task.Delay(LockDelayRetry, time, cancellationToken).ConfigureAwait(false);
        }

        if (claim.Abandoned is { } abandoned)
        {
            logger.Warning("task {Namespace:l}/{Task:l}: slot {AbandonedSlot} of node {AbandonedNode:l} was abandoned (its session is gone)",
                request.Task.Namespace, request.Task.Name, abandoned.Slot, abandoned.Node);
        }

        switch (claim.Status)
        {
            case ClaimStatus.Claimed:
                return await RunClaimedAsync(request, claim.Claim!, stop, cancellationToken).ConfigureAwait(false) with { Abandoned = claim.Abandoned };
            case ClaimStatus.AlreadyClaimed:
                return new FireResult(FireStatus.AlreadyClaimed, null, claim.Current, claim.Detail) { Abandoned = claim.Abandoned };
            case ClaimStatus.Busy when request.Concurrency == ConcurrencyPolicy.Forbid:
                var marked = await marker.RecordSkippedAsync(request.Task, request.Slot, node, "still-running", cancellationToken).ConfigureAwait(false);
                if (marked)
                {
                    logger.Information("task {Namespace:l}/{Task:l}: slot {Slot} skipped: {Detail:l}", request.Task.Namespace, request.Task.Name, request.Slot, claim.Detail);
                }

                return new FireResult(FireStatus.Busy, null, claim.Current, claim.Detail) { Marked = marked, Abandoned = claim.Abandoned };
            case ClaimStatus.Busy:
                return new FireResult(FireStatus.Busy, null, claim.Current, claim.Detail) { Abandoned = claim.Abandoned };
            default:
                return new FireResult(FireStatus.NotClaimed, null, claim.Current, claim.Detail) { Abandoned = claim.Abandoned };
        }
    }

    private async Task<FireResult> RunClaimedAsync(FireRequest request, SlotClaim claim, StopRequest? callerStop, CancellationToken cancellationToken)
    {
        var lockKey = store.Layout.LockKey(request.Task.Namespace, request.Task.Name);
        await using var watch = LockKeyWatch.Start(store.Client, lockKey, session, time: time);
        using var stop = new StopRequest();
        using var onLost = stop.StopWhen(() => LossReason(watch) ?? "lock-lost", watch.Lost);
        using var onCaller = callerStop is null ? default : stop.StopWhen(() => "stopped: " + (callerStop.Reason ?? "requested"), callerStop.Token);

        var slotInstant = request.FireTime ?? DateTimeOffset.FromUnixTimeSeconds(request.Slot);
        var context = new RunContext(request.Task.Namespace, request.Task.Name, node, request.Slot, claim.RunId, request.Command.Display, TimeSpan.Zero, request.Notify);
        var runLogger = logger.ForRun(context);
        runLogger.Information("claimed slot {Slot} (fence {Fence}): {Command:l}", request.Slot, claim.Fence.Value, request.Command.Display);

        var attempt = 1;
        var backoff = request.RetryBackoff;
        ChildOutcome outcome;
        while (true)
        {
            var identity = new RunIdentity(request.Task.Namespace, request.Task.Name, request.Slot, node, claim.RunId, claim.Fence.AsLong);
            var forwarder = new ChildOutputForwarder(logger, context);
            var attemptContext = context;
            outcome = await runner.RunAsync(request.Command, identity, forwarder, stop, start =>
            {
                attemptContext = context with { FireDelay = start.StartedAt - slotInstant };
                runLogger.Information("child {Pid} started, fire delay {FireDelayMs:0.0} ms", start.ProcessGroupId, attemptContext.FireDelay.TotalMilliseconds);
                notifier.RunStarted(attemptContext);
            }).ConfigureAwait(false);
            context = attemptContext;

            var retryable = outcome.State is RunState.Failed or RunState.TimedOut && outcome.StoppedReason is null;
            if (!retryable || attempt > request.RetryLimit || time.GetUtcNow() + backoff >= request.Deadline)
            {
                break;
            }

            runLogger.Warning("attempt {Attempt} ended: {Reason:l}; retrying in {Backoff:l}", attempt, outcome.Reason, DurationText.Of(backoff));
            try
            {
                await Task.Delay(backoff, time, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break; // Stopped while waiting: the last attempt's outcome stands, recorded below with the stop reason.
            }

            var next = await recorder.StartAttemptAsync(claim, attempt + 1, cancellationToken).ConfigureAwait(false);
            if (next is null)
            {
                stop.Stop(LossReason(watch) ?? "lock-lost: the lock was no longer held when retrying");
                break;
            }

            claim = next;
            attempt++;
            backoff *= 2;
        }

        var final = FinalRecord(claim, outcome, attempt, stop.Reason, watch.IsLost || (stop.Reason?.StartsWith("lock-lost", StringComparison.Ordinal) ?? false));
        var finish = await recorder.FinishAsync(claim, final, request.HistoryLimit, cancellationToken).ConfigureAwait(false);
        if (finish.Status == FinishStatus.LockLost && final.State != RunState.Lost)
        {
            runLogger.Warning("the lock was lost before the run could be recorded; its record went to history only");
        }

        runLogger.ForContext("DurationMs", Math.Round(outcome.Duration.TotalMilliseconds, 1))
            .Information("slot {Slot} {State:l} ({Reason:l}) after {Duration:l}", request.Slot, final.State.ToString(), final.Reason ?? "exit 0", DurationText.Of(outcome.Duration));
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

        return new FireResult(FireStatus.Ran, final, null, $"ran slot {request.Slot}: {final.State}") { Outcome = outcome, Finish = finish };
    }

    /// <summary>
    /// The reason recorded for a lost lock: <c>session-lost: …</c> when the executor's session went first,
    /// <c>lock-lost: …</c> when the key itself showed it; null while the lock is held.
    /// </summary>
    private static string? LossReason(LockKeyWatch watch) =>
        watch.LostReason is { } reason ? (watch.LostWithSession ? "session-lost: " : "lock-lost: ") + reason : null;

    private RunRecord FinalRecord(SlotClaim claim, ChildOutcome outcome, int attempt, string? stopReason, bool lockLost)
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
            Reason = lockLost ? stopReason ?? outcome.StoppedReason ?? "lock-lost" : outcome.Reason,
            OutputTail = outcome.OutputTail.Length == 0 ? null : outcome.OutputTail,
        };
    }
}
