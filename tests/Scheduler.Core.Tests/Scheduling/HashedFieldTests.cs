using Dtask.Core.Scheduling;

namespace Dtask.Core.Tests.Scheduling;

public sealed class HashedFieldTests
{
    private static string Resolve(string cron, string key)
    {
        Assert.True(CronNotation.TryParse(cron, key, out var notation, out var error), error);
        return notation!.Expression!;
    }

    private static int[] Fields(string expression) => [.. expression.Split(' ').Where(f => f != "*").Select(f => int.Parse(f, System.Globalization.CultureInfo.InvariantCulture))];

    [Fact]
    public void The_same_name_always_gets_the_same_values_on_every_machine()
    {
        // Pinned: SHA-256 based, so these hold in every process and on every machine. A change here moves
        // every H task in every fleet; it must be deliberate.
        Assert.Equal("5 9 * * *", Resolve("H H * * *", "default/backup"));
        Assert.Equal("33 2 * * *", Resolve("H H * * *", "prod/report"));
        Assert.Equal(Resolve("H H * * *", "default/backup"), Resolve("H H * * *", "default/backup"));
    }

    [Fact]
    public void The_hash_is_the_documented_sha256_prefix()
    {
        var digest = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("default/backup\nminute"));
        var expected = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(digest);

        Assert.Equal(expected, NameHash.Of("default/backup", "minute"));
        Assert.Equal((long)(expected % 60), NameHash.Pick("default/backup", "minute", 60));
    }

    [Fact]
    public void Five_and_six_field_forms_hash_the_minute_the_same_way()
    {
        var five = Fields(Resolve("H H * * *", "team/job"));
        var six = Resolve("0 H H * * *", "team/job").Split(' ');

        Assert.Equal(five[0].ToString(System.Globalization.CultureInfo.InvariantCulture), six[1]);
        Assert.Equal(five[1].ToString(System.Globalization.CultureInfo.InvariantCulture), six[2]);
    }

    [Fact]
    public void A_thousand_names_spread_over_minutes_and_hours()
    {
        var minutes = new int[60];
        var hours = new int[24];
        for (var i = 0; i < 1000; i++)
        {
            var fields = Fields(Resolve("H H * * *", $"ns-{i % 7}/task-{i}"));
            minutes[fields[0]]++;
            hours[fields[1]]++;
        }

        // Chi-square against the uniform distribution: 59 and 23 degrees of freedom; the bounds are about
        // four standard deviations above the mean, so a fair hash passes and a clumping one (all at 0) fails.
        Assert.InRange(ChiSquare(minutes), 0, 59 + (4 * Math.Sqrt(2 * 59)));
        Assert.InRange(ChiSquare(hours), 0, 23 + (4 * Math.Sqrt(2 * 23)));
        Assert.InRange(minutes.Max(), 1, 35);
        Assert.InRange(minutes.Min(), 3, 1000);
        Assert.InRange(hours.Max(), 1, 70);
    }

    private static double ChiSquare(int[] buckets)
    {
        var expected = buckets.Sum() / (double)buckets.Length;
        return buckets.Sum(b => (b - expected) * (b - expected) / expected);
    }

    [Fact]
    public void H_forms_stay_in_their_ranges()
    {
        for (var i = 0; i < 200; i++)
        {
            var key = $"default/t{i}";
            var f = Resolve("H(0-29) H H H H", key).Split(' ');
            Assert.InRange(int.Parse(f[0]), 0, 29);
            Assert.InRange(int.Parse(f[1]), 0, 23);
            Assert.InRange(int.Parse(f[2]), 1, 28);
            Assert.InRange(int.Parse(f[3]), 1, 12);
            Assert.InRange(int.Parse(f[4]), 0, 6);

            var step = Resolve("H/15 H(0-19)/10 * * *", key).Split(' ');
            var minuteStart = int.Parse(step[0].Split('-')[0]);
            Assert.InRange(minuteStart, 0, 14);
            Assert.EndsWith("-59/15", step[0], StringComparison.Ordinal);
            var hourStart = int.Parse(step[1].Split('-')[0]);
            Assert.InRange(hourStart, 0, 9);
            Assert.EndsWith("-19/10", step[1], StringComparison.Ordinal);
        }
    }

    [Fact]
    public void H_every_15_minutes_runs_four_times_an_hour_at_a_hashed_offset()
    {
        var schedule = TaskSchedule.Create(new ScheduleSpec("H/15 * * * *", null, null, null, "default/backup"));
        var from = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var slots = schedule.Occurrences(from, from.AddHours(1)).ToArray();

        Assert.Equal(4, slots.Length);
        Assert.All(slots.Zip(slots.Skip(1)), p => Assert.Equal(TimeSpan.FromMinutes(15), p.Second - p.First));
        Assert.Equal(slots[0].Minute, int.Parse(schedule.Expression.Split('-')[0]));
    }

    [Fact]
    public void Different_names_and_fields_hash_independently()
    {
        Assert.NotEqual(NameHash.Of("default/a", "minute"), NameHash.Of("default/b", "minute"));
        Assert.NotEqual(NameHash.Of("default/a", "minute"), NameHash.Of("default/a", "hour"));
    }
}
