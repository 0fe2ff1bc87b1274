using Dtask.Core.Scheduling;

namespace Dtask.Core.Tests.Scheduling;

public sealed class JitterTests
{
    [Fact]
    public void Jitter_is_the_same_for_the_same_task_and_slot_and_stays_in_bounds()
    {
        var jitter = TimeSpan.FromMinutes(5);
        var a = TaskSchedule.Create(new ScheduleSpec("*/10 * * * *", null, null, jitter, "default/backup"));
        var again = TaskSchedule.Create(new ScheduleSpec("*/10 * * * *", null, null, jitter, "default/backup"));
        var other = TaskSchedule.Create(new ScheduleSpec("*/10 * * * *", null, null, jitter, "default/report"));

        var from = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var delays = new List<TimeSpan>();
        var differs = 0;
        foreach (var t in a.Occurrences(from, from.AddDays(2)))
        {
            var slot = Slot.At(t);
            var delay = a.JitterOf(slot);
            Assert.Equal(delay, again.JitterOf(slot));
            Assert.InRange(delay, TimeSpan.Zero, jitter - TimeSpan.FromTicks(1));
            Assert.Equal(0, delay.Ticks % TimeSpan.TicksPerMillisecond);
            Assert.Equal(t + delay, a.FireTime(slot));
            differs += delay == other.JitterOf(slot) ? 0 : 1;
            delays.Add(delay);
        }

        Assert.Equal(288, delays.Count);
        Assert.True(differs > 280);
        Assert.True(delays.Distinct().Count() > 250, "delays vary from slot to slot");
        Assert.InRange(delays.Average(d => d.TotalSeconds), 120, 180);
    }

    [Fact]
    public void No_jitter_means_no_delay()
    {
        var schedule = TaskSchedule.Create(new ScheduleSpec("@hourly", null, null, null, "default/backup"));
        var slot = new Slot(1_767_225_600);

        Assert.Equal(TimeSpan.Zero, schedule.JitterOf(slot));
        Assert.Equal(slot.Instant, schedule.FireTime(slot));
    }
}
