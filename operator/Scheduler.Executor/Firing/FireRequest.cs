using Dtask.Core.Model;
using Dtask.Core.Scheduling;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Processes;

namespace Dtask.Executor.Firing;

/// <summary>One slot of one task to fire, with what the task's spec says about running it.</summary>
/// <param name="Task">The task.</param>
/// <param name="Slot">The slot id (Unix seconds).</param>
/// <param name="Command">What to run.</param>
/// <param name="Deadline">The last instant a claim or a retry may start (the next slot, or slot + startingDeadline).</param>
public sealed record FireRequest(TaskId Task, long Slot, ChildCommand Command, DateTimeOffset Deadline)
{
    /// <summary>What to do when the previous run still holds the lock.</summary>
    public ConcurrencyPolicy Concurrency { get; init; } = ConcurrencyPolicy.Forbid;

    /// <summary>How many retries after a failed or timed-out attempt (<c>retries.limit</c>).</summary>
    public int RetryLimit { get; init; }

    /// <summary>The wait before the first retry, doubled for each next one (<c>retries.backoff</c>).</summary>
    public TimeSpan RetryBackoff { get; init; } = RetryPolicy.DefaultBackoff;

    /// <summary>How many history entries to keep (<c>history</c>).</summary>
    public int HistoryLimit { get; init; } = ScheduledTaskSpec.DefaultHistory;

    /// <summary>The run id the claim writes; a new one (<see cref="SlotClaimer.NewRunId"/>) when null. Known in advance so a
    /// <c>Stop</c> control request naming it can be matched to this fire.</summary>
    public string? RunId { get; init; }

    /// <summary>When the slot was due to fire (nominal + jitter); the fire delay is measured from it. The nominal slot when null.</summary>
    public DateTimeOffset? FireTime { get; init; }

    /// <summary>The task's notification settings.</summary>
    public TaskNotification? Notify { get; init; }

    /// <summary>
    /// For a manual run: the trigger it runs. The claim then consumes the trigger (<see cref="SlotClaimer.ClaimManualAsync"/>),
    /// <see cref="Slot"/> is not used to claim, and a busy task is never recorded skipped for it (the trigger waits).
    /// </summary>
    public ManualTrigger? Trigger { get; init; }

    /// <summary>The task's schedule, when known: its finish then trims the history without listing it.</summary>
    public TaskSchedule? Schedule { get; init; }

    /// <summary>A request for <paramref name="slot"/> of a task spec, with its command, retries, history and policy.</summary>
    public static FireRequest FromSpec(TaskId task, long slot, ScheduledTaskSpec spec, DateTimeOffset deadline, TaskNotification? notify = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new FireRequest(task, slot, ChildCommand.FromSpec(spec), deadline)
        {
            Concurrency = spec.EffectiveConcurrencyPolicy,
            RetryLimit = spec.Retries?.EffectiveLimit ?? 0,
            RetryBackoff = spec.Retries?.BackoffDuration ?? RetryPolicy.DefaultBackoff,
            HistoryLimit = spec.EffectiveHistory,
            Notify = notify,
        };
    }
}

/// <summary>What became of a <see cref="FireRequest"/>.</summary>
public enum FireStatus
{
    /// <summary>This executor claimed the slot and ran the child (see <see cref="FireResult.Record"/>).</summary>
    Ran,

    /// <summary>Someone had claimed or recorded the slot (or a later one) already.</summary>
    AlreadyClaimed,

    /// <summary>
    /// The previous run still holds the lock. Under <c>Forbid</c> the slot was recorded <c>skipped</c> /
    /// <c>still-running</c> (by this executor when <see cref="FireResult.Marked"/>); under <c>Replace</c> nothing was
    /// written: the caller asks the holder to stop and fires again.
    /// </summary>
    Busy,

    /// <summary>No claim was possible before the deadline (lock-delay in force, or a lost race); nothing ran here.</summary>
    NotClaimed,
}

/// <summary>The answer of <see cref="SlotFiring.FireAsync"/>.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Record">The final run record written (for <see cref="FireStatus.Ran"/>), or the skip marker.</param>
/// <param name="Current">The run record found, when another executor holds or held the slot.</param>
/// <param name="Detail">A sentence for logs and the command line.</param>
public sealed record FireResult(FireStatus Status, RunRecord? Record, RunRecord? Current, string Detail)
{
    /// <summary>How the child ended, for <see cref="FireStatus.Ran"/>.</summary>
    public ChildOutcome? Outcome { get; init; }

    /// <summary>How the finish was written, for <see cref="FireStatus.Ran"/>.</summary>
    public FinishResult? Finish { get; init; }

    /// <summary>True when this executor wrote the skip marker.</summary>
    public bool Marked { get; init; }

    /// <summary>A running record found abandoned (and marked so) on the way.</summary>
    public RunRecord? Abandoned { get; init; }
}
