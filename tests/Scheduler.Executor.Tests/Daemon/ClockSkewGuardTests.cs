using Dtask.Consul.Http;
using Dtask.Executor.Daemon;
using Dtask.Executor.Tests.Support;
using Microsoft.Extensions.Time.Testing;
using Serilog;

namespace Dtask.Executor.Tests.Daemon;

public sealed class ClockSkewGuardTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, 500, TimeSpan.Zero);

    public static TheoryData<string, double, bool> Rows => new()
    {
        // name, agent's Date header relative to the local clock (seconds, truncated like the header), may claim
        { "same clock, header truncated to the second", -0.5, true },
        { "agent 1.9 s ahead: within 2 s", 1.9, true },
        { "agent 3 s ahead", 3, false },
        { "agent 2.5 s behind plus the header's resolution: within 2 s", -2.5, true },
        { "agent 4 s behind", -4, false },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Claims_stop_beyond_the_limit_allowing_for_the_headers_resolution(string name, double agentOffset, bool mayClaim)
    {
        _ = name;
        var time = new FakeTimeProvider(Now);
        var guard = new ClockSkewGuard(TimeSpan.FromSeconds(2), time, new LoggerConfiguration().CreateLogger());
        var date = Now.AddSeconds(agentOffset);
        date = DateTimeOffset.FromUnixTimeSeconds(date.ToUnixTimeSeconds());
        guard.Observe(new ConsulResponseMeta(1, true, TimeSpan.Zero, date, TimeSpan.FromMilliseconds(5)));
        Assert.Equal(mayClaim, guard.MayClaim);
    }

    [Fact]
    public void Each_change_of_state_is_logged_once()
    {
        var time = new FakeTimeProvider(Now);
        var sink = new CapturingSink();
        var guard = new ClockSkewGuard(TimeSpan.FromSeconds(2), time, new LoggerConfiguration().WriteTo.Sink(sink).CreateLogger());
        var skewed = new ConsulResponseMeta(1, true, TimeSpan.Zero, Now.AddSeconds(-10), TimeSpan.Zero);
        var fine = new ConsulResponseMeta(1, true, TimeSpan.Zero, DateTimeOffset.FromUnixTimeSeconds(Now.ToUnixTimeSeconds()), TimeSpan.Zero);
        guard.Observe(skewed);
        guard.Observe(skewed);
        guard.Observe(skewed);
        Assert.False(guard.MayClaim);
        guard.Observe(fine);
        guard.Observe(fine);
        Assert.True(guard.MayClaim);
        Assert.Equal(2, sink.Events.Count);
        Assert.Contains("ahead of", sink.Events[0].RenderMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }
}
