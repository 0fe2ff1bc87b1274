namespace Dtask.Core.Scheduling;

/// <summary>What <see cref="DuePlanner.Plan"/> decided about the most recent due slot.</summary>
public enum DueDecision
{
    /// <summary>No slot is due: nothing to fire, nothing missed.</summary>
    NothingDue,

    /// <summary>Fire <see cref="DuePlan.Fire"/> now (claim it; retry the claim until <see cref="DuePlan.FireBy"/>).</summary>
    Fire,

    /// <summary>The most recent due slot is past its window (grace for <c>Skip</c>, <c>startingDeadline</c> for <c>RunOnce</c>): it is missed too.</summary>
    TooLate,
}

/// <summary>
/// The result of <see cref="DuePlanner.Plan"/>: which slots are due, which one to fire now (if any), and which
/// ones to record as missed. Due slots are those after the last handled slot (and after the task's earliest
/// time) whose fire time (nominal + jitter) is not after <c>now</c>.
/// </summary>
/// <param name="EarliestDue">The oldest due slot; <c>null</c> when nothing is due.</param>
/// <param name="MostRecentDue">The newest due slot; <c>null</c> when nothing is due.</param>
/// <param name="DueCount">
/// How many slots are due. Exact for <c>every</c>; for cron, exact up to <see cref="DuePlanner.CountCap"/>,
/// and <c>CountCap + 1</c> when there are more (see <see cref="DueCountIsExact"/>).
/// </param>
/// <param name="DueCountIsExact">False when a cron count stopped at the cap.</param>
/// <param name="TooManyMissed">
/// More than <see cref="DuePlanner.CountCap"/> slots were due: a long outage, a wrong clock or an old earliest
/// time. The decision is made all the same (only the newest slot can fire); callers should warn, like the
/// CronJob controller's "too many missed start times".
/// </param>
/// <param name="Decision">Fire the newest due slot, or it is too late, or nothing is due.</param>
/// <param name="Fire">The slot to fire now; <c>null</c> unless <see cref="Decision"/> is <see cref="DueDecision.Fire"/>.</param>
/// <param name="FireBy">
/// The last instant at which <see cref="Fire"/> may still start (its fire time plus its window); <c>null</c> when
/// there is no limit (<c>RunOnce</c> without <c>startingDeadline</c>) or nothing fires.
/// </param>
/// <param name="Missed">The newest missed slots, oldest first, at most <see cref="DuePlanner.MissedListLimit"/>.</param>
/// <param name="MissedCount">How many due slots are missed (every due slot but <see cref="Fire"/>); as exact as <see cref="DueCount"/>.</param>
/// <param name="Next">The next slot that is not due yet (its fire time is after <c>now</c>); <c>null</c> when the schedule has no more slots.</param>
/// <param name="NextFireTime">When <see cref="Next"/> fires (nominal + jitter): when to plan again.</param>
public sealed record DuePlan(
    Slot? EarliestDue,
    Slot? MostRecentDue,
    long DueCount,
    bool DueCountIsExact,
    bool TooManyMissed,
    DueDecision Decision,
    Slot? Fire,
    DateTimeOffset? FireBy,
    IReadOnlyList<Slot> Missed,
    long MissedCount,
    Slot? Next,
    DateTimeOffset? NextFireTime);
