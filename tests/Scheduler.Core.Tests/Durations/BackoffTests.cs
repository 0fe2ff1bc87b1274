using Dtask.Core.Durations;

namespace Dtask.Core.Tests.Durations;

public sealed class BackoffTests
{
    [Fact]
    public void Without_jitter_the_waits_double_from_the_minimum_up_to_the_maximum()
    {
        var backoff = new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(2));

        var waits = Enumerable.Range(0, 7).Select(_ => backoff.Next().TotalMilliseconds).ToList();

        Assert.Equal([100.0, 200, 400, 800, 1600, 2000, 2000], waits);
    }

    [Fact]
    public void A_maximum_that_is_not_a_doubling_of_the_minimum_is_reached_exactly()
    {
        var backoff = new Backoff(TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(1));

        Assert.Equal(TimeSpan.FromMilliseconds(300), backoff.Next());
        Assert.Equal(TimeSpan.FromMilliseconds(600), backoff.Next());
        Assert.Equal(TimeSpan.FromSeconds(1), backoff.Current);
        Assert.Equal(TimeSpan.FromSeconds(1), backoff.Next());
    }

    [Fact]
    public void Current_is_the_next_wait_and_Reset_starts_over_from_the_minimum()
    {
        var backoff = new Backoff(TimeSpan.FromSeconds(10), TimeSpan.MaxValue);
        Assert.Equal(TimeSpan.FromSeconds(10), backoff.Current);

        backoff.Next();
        backoff.Next();
        Assert.Equal(TimeSpan.FromSeconds(40), backoff.Current);

        backoff.Reset();
        Assert.Equal(TimeSpan.FromSeconds(10), backoff.Next());
    }

    [Fact]
    public void Without_a_cap_the_waits_stop_growing_at_the_largest_duration_instead_of_overflowing()
    {
        var backoff = new Backoff(TimeSpan.FromSeconds(1), TimeSpan.MaxValue);

        for (var i = 0; i < 80; i++)
        {
            backoff.Next();
        }

        Assert.Equal(TimeSpan.MaxValue, backoff.Next());
    }

    [Fact]
    public void With_jitter_each_wait_lies_between_half_and_all_of_the_unjittered_one()
    {
        var backoff = new Backoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(8), new Random(7));

        var waits = Enumerable.Range(0, 6).Select(_ => backoff.Next().TotalSeconds).ToList();

        Assert.All(waits.Zip([1.0, 2, 4, 8, 8, 8]), w => Assert.InRange(w.First, w.Second / 2, w.Second));
        Assert.Contains(waits.Zip([1.0, 2, 4, 8, 8, 8]), w => w.First < w.Second);
    }

    [Fact]
    public void A_negative_minimum_or_a_maximum_below_the_minimum_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Backoff(TimeSpan.FromSeconds(-1), TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Backoff(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1)));
    }
}
