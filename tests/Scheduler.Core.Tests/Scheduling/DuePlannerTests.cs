using System.Globalization;
using Dtask.Core.Model;
using Dtask.Core.Scheduling;

namespace Dtask.Core.Tests.Scheduling;

public sealed class DuePlannerTests
{
    private static DateTimeOffset At(string utc) => DateTimeOffset.Parse(utc, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    private static readonly ScheduleSpec Hourly = new("0 * * * *", null, null, null, "default/hourly");
    private static readonly ScheduleSpec EveryMinute = new(null, TimeSpan.FromMinutes(1), null, null, "default/minutely");
    private static readonly ScheduleSpec BerlinDaily = new("30 2 * * *", null, "Europe/Berlin", null, "default/berlin");
    private static readonly ScheduleSpec NewYorkHalfHourly = new("*/30 * * * *", null, "America/New_York", null, "default/ny");

    /// <summary>One row: the inputs of the planner and what it must decide.</summary>
    private sealed record Row(
        ScheduleSpec Spec,
        string? LastSlot,
        string Earliest,
        string Now,
        TimeSpan? Deadline,
        MissedRunPolicy Policy,
        DueDecision Decision,
        string? Fire = null,
        string? FireBy = null,
        long Missed = 0,
        string[]? MissedSlots = null,
        string? Next = null,
        bool TooMany = false,
        bool Exact = true);

    private static readonly TimeSpan TwoMinutes = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan TenMinutes = TimeSpan.FromMinutes(10);

    private static readonly Dictionary<string, Row> Rows = new()
    {
        ["never ran, not due yet"] = new(Hourly, null, "2026-03-10T10:05:00Z", "2026-03-10T10:30:00Z", null, MissedRunPolicy.Skip,
            DueDecision.NothingDue, Next: "2026-03-10T11:00:00Z"),
        ["never ran, is due"] = new(Hourly, null, "2026-03-10T09:30:00Z", "2026-03-10T10:00:10Z", null, MissedRunPolicy.Skip,
            DueDecision.Fire, Fire: "2026-03-10T10:00:00Z", FireBy: "2026-03-10T10:01:00Z", Next: "2026-03-10T11:00:00Z"),
        ["created exactly at a slot: that slot is not due"] = new(Hourly, null, "2026-03-10T10:00:00Z", "2026-03-10T10:00:30Z", null, MissedRunPolicy.RunOnce,
            DueDecision.NothingDue, Next: "2026-03-10T11:00:00Z"),
        ["ran the last slot, not due"] = new(Hourly, "2026-03-10T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T10:59:59Z", null, MissedRunPolicy.Skip,
            DueDecision.NothingDue, Next: "2026-03-10T11:00:00Z"),
        ["ran the last slot, the next one is due"] = new(Hourly, "2026-03-10T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T11:00:00Z", null, MissedRunPolicy.Skip,
            DueDecision.Fire, Fire: "2026-03-10T11:00:00Z", FireBy: "2026-03-10T11:01:00Z", Next: "2026-03-10T12:00:00Z"),
        ["Skip, late beyond the grace window: missed"] = new(Hourly, "2026-03-10T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T11:05:00Z", null, MissedRunPolicy.Skip,
            DueDecision.TooLate, Missed: 1, MissedSlots: ["2026-03-10T11:00:00Z"], Next: "2026-03-10T12:00:00Z"),
        ["Skip, exactly at the end of the grace window: fires"] = new(Hourly, "2026-03-10T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T11:01:00Z", null, MissedRunPolicy.Skip,
            DueDecision.Fire, Fire: "2026-03-10T11:00:00Z", FireBy: "2026-03-10T11:01:00Z", Next: "2026-03-10T12:00:00Z"),
        ["Skip, deadline shorter than the grace window: the deadline wins"] = new(Hourly, "2026-03-10T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T11:00:30Z", TimeSpan.FromSeconds(10), MissedRunPolicy.Skip,
            DueDecision.TooLate, Missed: 1, MissedSlots: ["2026-03-10T11:00:00Z"], Next: "2026-03-10T12:00:00Z"),
        ["Skip, deadline longer than the grace window: the grace wins"] = new(Hourly, "2026-03-10T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T11:05:00Z", TenMinutes, MissedRunPolicy.Skip,
            DueDecision.TooLate, Missed: 1, MissedSlots: ["2026-03-10T11:00:00Z"], Next: "2026-03-10T12:00:00Z"),
        ["Skip, three slots due, on time for the newest"] = new(Hourly, "2026-03-10T07:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T10:00:30Z", null, MissedRunPolicy.Skip,
            DueDecision.Fire, Fire: "2026-03-10T10:00:00Z", FireBy: "2026-03-10T10:01:00Z", Missed: 2, MissedSlots: ["2026-03-10T08:00:00Z", "2026-03-10T09:00:00Z"], Next: "2026-03-10T11:00:00Z"),
        ["RunOnce, late, no deadline: runs once"] = new(Hourly, "2026-03-10T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T11:05:00Z", null, MissedRunPolicy.RunOnce,
            DueDecision.Fire, Fire: "2026-03-10T11:00:00Z", Next: "2026-03-10T12:00:00Z"),
        ["RunOnce, within the deadline"] = new(Hourly, "2026-03-10T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T11:05:00Z", TenMinutes, MissedRunPolicy.RunOnce,
            DueDecision.Fire, Fire: "2026-03-10T11:00:00Z", FireBy: "2026-03-10T11:10:00Z", Next: "2026-03-10T12:00:00Z"),
        ["RunOnce, deadline passed"] = new(Hourly, "2026-03-10T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T11:05:00Z", TwoMinutes, MissedRunPolicy.RunOnce,
            DueDecision.TooLate, Missed: 1, MissedSlots: ["2026-03-10T11:00:00Z"], Next: "2026-03-10T12:00:00Z"),
        ["RunOnce, exactly at the deadline: fires"] = new(Hourly, "2026-03-10T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T11:02:00Z", TwoMinutes, MissedRunPolicy.RunOnce,
            DueDecision.Fire, Fire: "2026-03-10T11:00:00Z", FireBy: "2026-03-10T11:02:00Z", Next: "2026-03-10T12:00:00Z"),
        ["RunOnce, a tick past the deadline: missed"] = new(Hourly, "2026-03-10T10:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T11:02:00.0000001Z", TwoMinutes, MissedRunPolicy.RunOnce,
            DueDecision.TooLate, Missed: 1, MissedSlots: ["2026-03-10T11:00:00Z"], Next: "2026-03-10T12:00:00Z"),
        ["RunOnce, five hours of outage: the newest runs, the older are missed"] = new(Hourly, "2026-03-10T05:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T10:30:00Z", null, MissedRunPolicy.RunOnce,
            DueDecision.Fire, Fire: "2026-03-10T10:00:00Z", Missed: 4, MissedSlots: ["2026-03-10T06:00:00Z", "2026-03-10T07:00:00Z", "2026-03-10T08:00:00Z", "2026-03-10T09:00:00Z"], Next: "2026-03-10T11:00:00Z"),
        ["1,000 due slots, RunOnce: not too many yet"] = new(EveryMinute, "2026-03-10T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T16:40:00Z", null, MissedRunPolicy.RunOnce,
            DueDecision.Fire, Fire: "2026-03-10T16:40:00Z", Missed: 999, Next: "2026-03-10T16:41:00Z"),
        ["1,000 missed slots, RunOnce: too many, the newest still runs"] = new(EveryMinute, "2026-03-10T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T16:41:00Z", null, MissedRunPolicy.RunOnce,
            DueDecision.Fire, Fire: "2026-03-10T16:41:00Z", Missed: 1000, Next: "2026-03-10T16:42:00Z", TooMany: true),
        ["1,001 missed slots, Skip, counted exactly for every"] = new(EveryMinute, "2026-03-10T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T16:43:00Z", null, MissedRunPolicy.Skip,
            DueDecision.Fire, Fire: "2026-03-10T16:43:00Z", FireBy: "2026-03-10T16:44:00Z", Missed: 1002, Next: "2026-03-10T16:44:00Z", TooMany: true),
        ["too many missed, cron: the count stops at the cap, the newest still runs"] = new(Hourly, "2024-03-10T00:00:00Z", "2024-01-01T00:00:00Z", "2026-03-10T10:30:00Z", null, MissedRunPolicy.RunOnce,
            DueDecision.Fire, Fire: "2026-03-10T10:00:00Z", Missed: 1000, Next: "2026-03-10T11:00:00Z", TooMany: true, Exact: false),
        ["too many missed, deadline passed: everything is missed"] = new(EveryMinute, null, "2016-01-01T00:00:00Z", "2026-03-10T10:30:30Z", TimeSpan.FromSeconds(20), MissedRunPolicy.RunOnce,
            DueDecision.TooLate, Missed: 5358870, Next: "2026-03-10T10:31:00Z", TooMany: true),
        ["task recreated after the last slot: older slots are not due"] = new(Hourly, "2026-03-10T05:00:00Z", "2026-03-10T09:30:00Z", "2026-03-10T10:00:05Z", null, MissedRunPolicy.Skip,
            DueDecision.Fire, Fire: "2026-03-10T10:00:00Z", FireBy: "2026-03-10T10:01:00Z", Next: "2026-03-10T11:00:00Z"),
        ["clock behind the last slot: nothing due"] = new(Hourly, "2026-03-10T11:00:00Z", "2026-03-01T00:00:00Z", "2026-03-10T10:59:58Z", null, MissedRunPolicy.RunOnce,
            DueDecision.NothingDue, Next: "2026-03-10T12:00:00Z"),
        ["DST spring forward Berlin: 02:30 fires at 03:00 CEST"] = new(BerlinDaily, "2026-03-28T01:30:00Z", "2026-03-01T00:00:00Z", "2026-03-29T01:00:05Z", null, MissedRunPolicy.Skip,
            DueDecision.Fire, Fire: "2026-03-29T01:00:00Z", FireBy: "2026-03-29T01:01:00Z", Next: "2026-03-30T00:30:00Z"),
        ["DST fall back Berlin: the second 02:30 is not a slot"] = new(BerlinDaily, "2026-10-25T00:30:00Z", "2026-10-01T00:00:00Z", "2026-10-25T01:30:10Z", null, MissedRunPolicy.RunOnce,
            DueDecision.NothingDue, Next: "2026-10-26T01:30:00Z"),
        ["DST fall back New York, every 30 minutes: the repeated 01:00 runs again"] = new(NewYorkHalfHourly, "2026-11-01T05:30:00Z", "2026-10-01T00:00:00Z", "2026-11-01T06:00:05Z", null, MissedRunPolicy.Skip,
            DueDecision.Fire, Fire: "2026-11-01T06:00:00Z", FireBy: "2026-11-01T06:01:00Z", Next: "2026-11-01T06:30:00Z"),
    };

    public static TheoryData<string> RowNames => new(Rows.Keys);

    [Theory]
    [MemberData(nameof(RowNames))]
    public void Plans_the_due_slots(string name)
    {
        var row = Rows[name];
        var schedule = TaskSchedule.Create(row.Spec);

        var plan = DuePlanner.Plan(schedule, row.LastSlot is null ? null : At(row.LastSlot), At(row.Earliest), At(row.Now), row.Deadline, row.Policy);

        Assert.Equal(row.Decision, plan.Decision);
        Assert.Equal(row.Fire is null ? null : Slot.At(At(row.Fire)), plan.Fire);
        Assert.Equal(row.FireBy is null ? null : At(row.FireBy), plan.FireBy);
        Assert.Equal(row.Missed, plan.MissedCount);
        Assert.Equal(row.Next is null ? null : Slot.At(At(row.Next)), plan.Next);
        Assert.Equal(row.TooMany, plan.TooManyMissed);
        Assert.Equal(row.Exact, plan.DueCountIsExact);
        Assert.Equal(plan.MissedCount + (plan.Fire is null ? 0 : 1), plan.DueCount);
        Assert.True(plan.Missed.Count <= DuePlanner.MissedListLimit);
        Assert.Equal(Math.Min(plan.MissedCount, DuePlanner.MissedListLimit), plan.Missed.Count);
        if (row.MissedSlots is not null)
        {
            Assert.Equal(row.MissedSlots.Select(s => Slot.At(At(s))), plan.Missed);
        }

        if (plan.Decision == DueDecision.NothingDue)
        {
            Assert.Null(plan.EarliestDue);
            Assert.Null(plan.MostRecentDue);
        }
        else
        {
            Assert.NotNull(plan.EarliestDue);
            Assert.True(plan.EarliestDue <= plan.MostRecentDue);
            Assert.Equal(plan.Missed.Concat(plan.Fire is { } f ? [f] : []).Max(), plan.MostRecentDue);
        }
    }

    [Fact]
    public void The_missed_list_holds_the_newest_slots_oldest_first()
    {
        var schedule = TaskSchedule.Create(Hourly);

        var plan = DuePlanner.Plan(schedule, At("2024-03-10T00:00:00Z"), At("2024-01-01T00:00:00Z"), At("2026-03-10T10:30:00Z"), null, MissedRunPolicy.RunOnce);

        Assert.Equal(100, plan.Missed.Count);
        Assert.Equal(Slot.At(At("2026-03-10T09:00:00Z")), plan.Missed[^1]);
        Assert.Equal(Slot.At(At("2026-03-06T06:00:00Z")), plan.Missed[0]);
        Assert.Equal(Slot.At(At("2024-03-10T01:00:00Z")), plan.EarliestDue);
    }

    [Fact]
    public void A_jittered_slot_is_due_at_its_fire_time_and_lateness_counts_from_there()
    {
        var schedule = TaskSchedule.Create(new ScheduleSpec("0 * * * *", null, null, TimeSpan.FromMinutes(10), "default/jittered"));
        var slot = Slot.At(At("2026-03-10T10:00:00Z"));
        var fire = schedule.FireTime(slot);
        var last = At("2026-03-10T09:00:00Z");
        var created = At("2026-03-01T00:00:00Z");
        Assert.InRange(fire - slot.Instant, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(10));

        var before = DuePlanner.Plan(schedule, last, created, fire.AddTicks(-1), null, MissedRunPolicy.Skip);
        Assert.Equal(DueDecision.NothingDue, before.Decision);
        Assert.Equal(slot, before.Next);
        Assert.Equal(fire, before.NextFireTime);

        var atFire = DuePlanner.Plan(schedule, last, created, fire, null, MissedRunPolicy.Skip);
        Assert.Equal(slot, atFire.Fire);
        Assert.Equal(fire + DuePlanner.DefaultGrace, atFire.FireBy);

        var late = DuePlanner.Plan(schedule, last, created, fire + DuePlanner.DefaultGrace + TimeSpan.FromSeconds(1), null, MissedRunPolicy.Skip);
        Assert.Equal(DueDecision.TooLate, late.Decision);
        Assert.Equal([slot], late.Missed);
    }

    [Fact]
    public void Two_nodes_with_different_clocks_plan_the_same_slot()
    {
        var schedule = TaskSchedule.Create(new ScheduleSpec(null, TimeSpan.FromSeconds(90), null, TimeSpan.FromSeconds(30), "default/sync"));
        var last = At("2026-03-10T10:00:00Z");
        var created = At("2026-03-01T00:00:00Z");

        var a = DuePlanner.Plan(schedule, last, created, At("2026-03-10T10:02:00Z"), null, MissedRunPolicy.Skip);
        var b = DuePlanner.Plan(schedule, last, created, At("2026-03-10T10:02:10.5Z"), null, MissedRunPolicy.Skip);

        Assert.Equal(a.Fire, b.Fire);
        Assert.Equal(a.FireBy, b.FireBy);
        Assert.Equal(Slot.At(At("2026-03-10T10:01:30Z")), a.Fire);
    }
}
