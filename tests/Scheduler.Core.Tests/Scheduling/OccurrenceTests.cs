using System.Globalization;
using Dtask.Core.Scheduling;

namespace Dtask.Core.Tests.Scheduling;

public sealed class OccurrenceTests
{
    private static DateTimeOffset At(string utc) => DateTimeOffset.Parse(utc, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    private static readonly Dictionary<string, (string Cron, string? Zone, string From, string[] Expected)> Cases = new()
    {
        ["daily 02:30 Berlin, spring forward: runs at 03:00 CEST, the transition instant"] =
            ("30 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
        ["daily 02:30 Berlin, fall back: runs once, in the first (CEST) 02:30"] =
            ("30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        ["daily 02:30 New York, spring forward: runs at 03:00 EDT, the transition instant"] =
            ("30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
        ["daily 01:30 New York, fall back: runs once, in the first (EDT) 01:30"] =
            ("30 1 * * *", "America/New_York", "2026-10-31T00:00:00Z", ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
        ["daily 02:30 New York, fall back: 02:30 happens once, in EST"] =
            ("30 2 * * *", "America/New_York", "2026-10-31T12:00:00Z", ["2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"]),
        ["every 30 minutes Berlin, fall back: the repeated hour runs in both offsets"] =
            ("*/30 * * * *", "Europe/Berlin", "2026-10-24T23:00:00Z", ["2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"]),
        ["every 30 minutes New York, fall back: the repeated hour runs in both offsets"] =
            ("*/30 * * * *", "America/New_York", "2026-11-01T04:00:00Z", ["2026-11-01T04:30:00Z", "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"]),
        ["every 30 minutes Berlin, spring forward: the missing hour has no slots"] =
            ("*/30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"]),
        ["leap day: only in leap years"] =
            ("0 0 29 2 *", null, "2026-01-15T00:00:00Z", ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
        ["last day of the month with L"] =
            ("0 0 L * *", null, "2028-01-15T00:00:00Z", ["2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z", "2028-04-30T00:00:00Z"]),
        ["day 31 skips shorter months"] =
            ("0 0 31 * *", null, "2026-01-15T00:00:00Z", ["2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"]),
        ["day of month and day of week together: both must match (Friday the 13th)"] =
            ("0 0 13 * 5", null, "2026-01-01T00:00:00Z", ["2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z", "2026-11-13T00:00:00Z"]),
        ["six fields: seconds first"] =
            ("*/20 * * * * *", null, "2026-01-01T00:00:00Z", ["2026-01-01T00:00:20Z", "2026-01-01T00:00:40Z", "2026-01-01T00:01:00Z"]),
        ["a fraction of a second after a slot: the next one"] =
            ("* * * * *", null, "2026-01-01T00:00:00.5Z", ["2026-01-01T00:01:00Z"]),
        ["@hourly"] = ("@hourly", null, "2026-01-01T00:10:00Z", ["2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"]),
        ["@daily"] = ("@daily", null, "2026-01-01T00:10:00Z", ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]),
        ["@midnight in Berlin"] = ("@midnight", "Europe/Berlin", "2026-01-01T00:10:00Z", ["2026-01-01T23:00:00Z"]),
        ["@weekly: Sundays"] = ("@weekly", null, "2026-01-01T00:00:00Z", ["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"]),
        ["@monthly"] = ("@monthly", null, "2026-01-01T00:00:00Z", ["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"]),
        ["@yearly"] = ("@yearly", null, "2026-01-01T00:00:00Z", ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
        ["@annually"] = ("@annually", null, "2026-06-01T00:00:00Z", ["2027-01-01T00:00:00Z"]),
        ["@every 90s: multiples of 90 s since the epoch"] =
            ("@every 90s", null, "2026-01-01T00:00:01Z", ["2026-01-01T00:01:30Z", "2026-01-01T00:03:00Z", "2026-01-01T00:04:30Z"]),
        ["@every 11m: multiples of 660 s since the epoch; the time zone does not move them"] =
            ("@every 11m", "America/New_York", "2026-01-01T00:00:00Z", ["2026-01-01T00:05:00Z", "2026-01-01T00:16:00Z"]),
    };

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Next_gives_the_slots_in_order(string name)
    {
        var (cron, zone, from, expected) = Cases[name];
        var schedule = TaskSchedule.Create(new ScheduleSpec(cron, null, zone, null, "default/report"));

        var actual = new List<DateTimeOffset>();
        var t = At(from);
        foreach (var unused in expected)
        {
            t = schedule.Next(t)!.Value;
            actual.Add(t);
        }

        Assert.Equal(expected.Select(At), actual);
        Assert.All(actual, slot => Assert.Equal(TimeSpan.Zero, slot.Offset));
        Assert.Equal(actual, schedule.Occurrences(At(from), actual[^1]));
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Previous_agrees_with_next_even_inside_a_dst_gap(string name)
    {
        var (cron, zone, from, expected) = Cases[name];
        var schedule = TaskSchedule.Create(new ScheduleSpec(cron, null, zone, null, "default/report"));
        var slots = expected.Select(At).ToArray();

        for (var i = 0; i < slots.Length; i++)
        {
            Assert.Equal(slots[i], schedule.Previous(slots[i]));
            Assert.Equal(slots[i], schedule.Previous(slots[i].AddTicks(1)));
            if (i > 0)
            {
                Assert.Equal(slots[i - 1], schedule.Previous(slots[i].AddTicks(-1)));
            }
        }

        Assert.True(schedule.Previous(slots[0].AddTicks(-1)) <= At(from));
    }

    [Fact]
    public void Every_slots_are_the_same_whatever_now_the_node_starts_from()
    {
        var schedule = TaskSchedule.Create(new ScheduleSpec(null, TimeSpan.FromSeconds(90), null, null, "default/sync"));
        var nodeA = schedule.Occurrences(At("2026-05-01T10:00:00Z"), At("2026-05-01T11:00:00Z"));
        var nodeB = schedule.Occurrences(At("2026-05-01T09:17:43.250Z"), At("2026-05-01T11:00:00Z"));

        Assert.Equal(nodeA, nodeB.SkipWhile(t => t <= At("2026-05-01T10:00:00Z")));
        Assert.All(nodeA, t => Assert.Equal(0, t.ToUnixTimeSeconds() % 90));
        Assert.Equal(40, nodeA.Count());
        Assert.Equal(40, schedule.Count(At("2026-05-01T10:00:00Z"), At("2026-05-01T11:00:00Z"), cap: 5));
    }

    [Fact]
    public void Every_slots_before_the_epoch_are_still_multiples()
    {
        var schedule = TaskSchedule.Create(new ScheduleSpec(null, TimeSpan.FromHours(7), null, null, "default/sync"));

        Assert.Equal(At("1969-12-31T17:00:00Z"), schedule.Next(At("1969-12-31T12:00:00Z")));
        Assert.Equal(At("1969-12-31T10:00:00Z"), schedule.Previous(At("1969-12-31T12:00:00Z")));
    }

    [Fact]
    public void Cron_count_stops_above_the_cap()
    {
        var schedule = TaskSchedule.Create(new ScheduleSpec("* * * * *", null, null, null, "default/x"));

        Assert.Equal(60, schedule.Count(At("2026-01-01T00:00:00Z"), At("2026-01-01T01:00:00Z"), cap: 1000));
        Assert.Equal(11, schedule.Count(At("2026-01-01T00:00:00Z"), At("2026-01-01T01:00:00Z"), cap: 10));
    }

    [Fact]
    public void Slot_ids_are_unix_seconds_of_the_nominal_instant()
    {
        var slot = Slot.At(At("2026-11-28T01:30:00Z"));

        Assert.Equal(1795829400, slot.Id);
        Assert.Equal("1795829400", slot.ToString());
        Assert.Equal(At("2026-11-28T01:30:00Z"), slot.Instant);
        Assert.Throws<ArgumentException>(() => Slot.At(At("2026-11-28T01:30:00.5Z")));
        Assert.True(new Slot(1) < new Slot(2));
    }
}
