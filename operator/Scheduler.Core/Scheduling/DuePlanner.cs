using Dtask.Core.Model;

namespace Dtask.Core.Scheduling;

/// <summary>
/// Decides, from what is recorded and the current time, which slot of a task fires now and which ones are
/// missed — a port of the Kubernetes CronJob controller's <c>mostRecentScheduleTime</c>, made exact with
/// <see cref="TaskSchedule.Previous"/> and extended with jitter, a grace window and <see cref="MissedRunPolicy"/>.
/// Pure: a function of its arguments only, so every node reaches the same plan.
/// </summary>
/// <remarks>
/// <para><b>Due slots.</b> <c>from = max(lastSlot, earliestTime)</c>. A slot <c>s</c> is due when
/// <c>from &lt; s</c> and its fire time <c>s + jitter(s)</c> is at or before <c>now</c>. Slots at or before the
/// last handled slot (run, skipped or recorded missed) or before the task existed are never due again.</para>
/// <para><b>Lateness.</b> <c>now − fireTime(M)</c> for the newest due slot <c>M</c>; older due slots are superseded
/// by <c>M</c> and are always missed (a task never runs twice to catch up).</para>
/// <para><b>Window.</b> <c>Skip</c>: <c>min(grace, startingDeadline)</c> — only an on-time slot fires, one whose
/// fire time was at most the grace window ago (default <see cref="DefaultGrace"/>); after an outage nothing
/// catches up. <c>RunOnce</c>: <c>startingDeadline</c>, unlimited when not set — after an outage the newest
/// missed slot runs once if it is still inside the deadline. <c>M</c> fires when its lateness is at most the
/// window (so a slot at exactly <c>now − deadline</c> still fires; one a tick older does not); otherwise the plan
/// says <see cref="DueDecision.TooLate"/> and <c>M</c> is missed too.</para>
/// <para><b>Too many.</b> Counting stops at <see cref="CountCap"/> for cron (cost is bounded whatever the clock
/// says); <c>every</c> is counted exactly by arithmetic. Either way <see cref="DuePlan.TooManyMissed"/> is set
/// above the cap, and the decision is still made for the newest slot, found directly without enumeration.</para>
/// </remarks>
public static class DuePlanner
{
    /// <summary>The grace window of <c>Skip</c> when none is given: how late an on-time slot may start.</summary>
    public static readonly TimeSpan DefaultGrace = TimeSpan.FromMinutes(1);

    /// <summary>Cron slots are counted up to this many; above it the plan says <see cref="DuePlan.TooManyMissed"/>.</summary>
    public const int CountCap = 1000;

    /// <summary>At most this many missed slots are listed (the newest ones); <see cref="DuePlan.MissedCount"/> has the total.</summary>
    public const int MissedListLimit = 100;

    /// <summary>Plans the slots of <paramref name="schedule"/> at <paramref name="now"/>.</summary>
    /// <param name="schedule">The task's schedule.</param>
    /// <param name="lastSlot">The newest slot already handled (run, skipped or recorded missed), from the run record; <c>null</c> when none.</param>
    /// <param name="earliestTime">The task's creation time, or when it was first observed; slots at or before it are never due.</param>
    /// <param name="now">The current time.</param>
    /// <param name="startingDeadline">How late after its fire time a slot may still start; <c>null</c> for no limit.</param>
    /// <param name="policy">What happens to slots nobody fired on time.</param>
    /// <param name="grace">The on-time window of <see cref="MissedRunPolicy.Skip"/>; <see cref="DefaultGrace"/> when <c>null</c>.</param>
    public static DuePlan Plan(
        TaskSchedule schedule,
        DateTimeOffset? lastSlot,
        DateTimeOffset earliestTime,
        DateTimeOffset now,
        TimeSpan? startingDeadline,
        MissedRunPolicy policy,
        TimeSpan? grace = null)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        var from = lastSlot is { } last && last > earliestTime ? last : earliestTime;

        // The newest slot whose nominal time has come; if its jitter has not elapsed yet it is not due, and the
        // slot before it is the newest due one (jitter < gap, so fire times keep the order of slots).
        DateTimeOffset? newest = schedule.Previous(now);
        DateTimeOffset? pending = null;
        if (newest is { } n && n > from && schedule.FireTime(Slot.At(n)) > now)
        {
            pending = n;
            newest = schedule.Previous(n.AddTicks(-1));
        }

        var next = pending ?? schedule.Next(from > now ? from : now);
        Slot? nextSlot = next is { } nx ? Slot.At(nx) : null;
        DateTimeOffset? nextFire = nextSlot is { } ns ? schedule.FireTime(ns) : null;

        if (newest is not { } mostRecent || mostRecent <= from)
        {
            return new DuePlan(null, null, 0, true, false, DueDecision.NothingDue, null, null, [], 0, nextSlot, nextFire);
        }

        var m = Slot.At(mostRecent);
        var earliest = Slot.At(schedule.Next(from)!.Value);
        var dueCount = schedule.Count(from, mostRecent, CountCap);
        var exact = schedule.Every is not null || dueCount <= CountCap;
        var tooMany = dueCount > CountCap;

        var window = policy == MissedRunPolicy.RunOnce
            ? startingDeadline
            : Min(grace ?? DefaultGrace, startingDeadline);
        var fireTime = schedule.FireTime(m);
        var fires = window is not { } w || now - fireTime <= w;

        var missedCount = fires ? dueCount - 1 : dueCount;
        var missed = NewestMissed(schedule, from, fires ? schedule.Previous(mostRecent.AddTicks(-1)) : mostRecent, missedCount);

        return new DuePlan(
            earliest,
            m,
            dueCount,
            exact,
            tooMany,
            fires ? DueDecision.Fire : DueDecision.TooLate,
            fires ? m : null,
            fires && window is { } limit ? fireTime + limit : null,
            missed,
            missedCount,
            nextSlot,
            nextFire);
    }

    private static TimeSpan? Min(TimeSpan a, TimeSpan? b) => b is { } bb && bb < a ? bb : a;

    private static List<Slot> NewestMissed(TaskSchedule schedule, DateTimeOffset from, DateTimeOffset? newest, long count)
    {
        var take = (int)Math.Min(count, MissedListLimit);
        var missed = new List<Slot>(take);
        for (var t = newest; missed.Count < take && t is { } slot && slot > from; t = schedule.Previous(slot.AddTicks(-1)))
        {
            missed.Add(Slot.At(slot));
        }

        missed.Reverse();
        return missed;
    }
}
