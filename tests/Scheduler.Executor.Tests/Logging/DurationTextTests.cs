using Dtask.Executor.Logging;

namespace Dtask.Executor.Tests.Logging;

public sealed class DurationTextTests
{
    public static TheoryData<string, TimeSpan, string> Rows => new()
    {
        { "a quick child", TimeSpan.FromTicks(203_368), "20 ms" },
        { "nothing at all", TimeSpan.Zero, "0 ms" },
        { "under a millisecond", TimeSpan.FromTicks(4_321), "0.4 ms" },
        { "a few milliseconds", TimeSpan.FromMicroseconds(3_940), "3.9 ms" },
        { "negative reads as nothing", TimeSpan.FromSeconds(-3), "0 ms" },
        { "a second and a bit", TimeSpan.FromMilliseconds(1_240), "1.2 s" },
        { "whole seconds", TimeSpan.FromSeconds(2), "2 s" },
        { "under a minute", TimeSpan.FromSeconds(42.7), "42 s" },
        { "minutes", TimeSpan.FromSeconds(245), "4 min 05 s" },
        { "hours", new TimeSpan(2, 3, 4), "2 h 03 min" },
        { "more than a day", TimeSpan.FromHours(27.5), "27 h 30 min" },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Reads_like_a_person_would_say_it(string row, TimeSpan duration, string expected)
    {
        Assert.False(string.IsNullOrEmpty(row));
        Assert.Equal(expected, DurationText.Of(duration));
    }
}
