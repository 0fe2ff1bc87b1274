using Dtask.Chaos.Faults;
using Dtask.Chaos.Hosts;

namespace Dtask.Chaos.Tests;

/// <summary>The seeded fault plan and the pure parts of the fault machinery (drift, offset file, partition rules).</summary>
public sealed class FaultPlanTests
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(10);

    [Fact]
    public void Ten_minutes_cover_every_scheduled_fault_kind_at_least_twice_and_the_seed_replays_the_plan()
    {
        var plan = FaultPlan.Full(TimeSpan.FromMinutes(10), Ttl, 20261205);

        foreach (var kind in Enum.GetValues<FaultKind>().Where(k => k != FaultKind.ClockOffset))
        {
            Assert.True(plan.Faults.Count(f => f.Kind == kind) >= 2, $"{kind}: {plan.Faults.Count(f => f.Kind == kind)} in ten minutes");
        }

        Assert.Equal(plan.Faults, FaultPlan.Full(TimeSpan.FromMinutes(10), Ttl, 20261205).Faults);
        Assert.NotEqual(plan.Faults, FaultPlan.Full(TimeSpan.FromMinutes(10), Ttl, 7).Faults);
        Assert.All(plan.Faults, f => Assert.True(f.Until <= TimeSpan.FromMinutes(10) - FaultPlan.QuietTail, $"{f.Kind} at {f.At} ends in the quiet tail"));
    }

    [Fact]
    public void A_server_partition_outlasts_two_TTLs_and_drifts_go_both_ways_past_the_skew_limit()
    {
        var plan = FaultPlan.Full(TimeSpan.FromMinutes(10), Ttl, 3);

        Assert.All(plan.Faults.Where(f => f.Kind == FaultKind.ConsulPartition), f => Assert.True(f.Hold > (Ttl * 2) + TimeSpan.FromSeconds(5)));
        var drifts = plan.Faults.Where(f => f.Kind == FaultKind.ClockDrift).Select(f => f.Offset!.Value).ToList();
        Assert.Contains(drifts, d => d > TimeSpan.FromSeconds(2));
        Assert.Contains(drifts, d => d < -TimeSpan.FromSeconds(2));
        Assert.All(plan.Faults.Where(f => f.Kind is FaultKind.ConsulPartition or FaultKind.AgentRestart), f => Assert.Equal("cluster", f.Lane));
        Assert.Equal("clock", new PlannedFault(TimeSpan.Zero, FaultKind.ClockDrift, TimeSpan.FromSeconds(1)).Lane);
        Assert.Equal("executor", new PlannedFault(TimeSpan.Zero, FaultKind.TreePause, TimeSpan.FromSeconds(1)).Lane);
    }

    [Fact]
    public void A_run_aimed_at_some_faults_keeps_only_those_kinds_and_the_clock_offsets()
    {
        var plan = FaultPlan.Full(TimeSpan.FromSeconds(120), Ttl, 5, new HashSet<FaultKind> { FaultKind.TreePause, FaultKind.ConsulPartition });

        Assert.Contains(plan.Faults, f => f.Kind == FaultKind.TreePause);
        Assert.Contains(plan.Faults, f => f.Kind == FaultKind.ConsulPartition);
        Assert.All(plan.Faults, f => Assert.Contains(f.Kind, new[] { FaultKind.TreePause, FaultKind.ConsulPartition }));
        Assert.Equal(2, plan.Clocks.Count);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(10, 2.5)]
    [InlineData(20, 5)]
    [InlineData(30, 2.5)]
    [InlineData(40, 0)]
    [InlineData(50, 0)]
    public void A_drift_goes_out_at_a_steady_rate_and_comes_back(int elapsedSeconds, double offsetSeconds)
    {
        var offset = NodeClock.Drift(TimeSpan.Zero, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(40), TimeSpan.FromSeconds(elapsedSeconds));

        Assert.Equal(offsetSeconds, offset.TotalSeconds, 3);
    }

    [Theory]
    [InlineData(30_000, "+30s")]
    [InlineData(-1_250, "-1.25s")]
    [InlineData(0, "+0s")]
    [InlineData(3_600_000, "+3600s")]
    public void The_offset_file_holds_what_libfaketime_reads(int milliseconds, string text) =>
        Assert.Equal(text, NodeClock.Format(TimeSpan.FromMilliseconds(milliseconds)));

    [Fact]
    public void Partition_rules_drop_both_ways_between_the_two_sides_only()
    {
        var rules = ServerPartition.Rules("t", ["127.9.9.3"], ["127.9.9.1", "127.9.9.2"]);

        Assert.Contains("ip saddr { 127.9.9.3 } ip daddr { 127.9.9.1, 127.9.9.2 } drop", rules, StringComparison.Ordinal);
        Assert.Contains("ip saddr { 127.9.9.1, 127.9.9.2 } ip daddr { 127.9.9.3 } drop", rules, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ServerPartition.Rules("t", ["127.9.9.1"], ["127.9.9.1", "127.9.9.2"]));
        Assert.Throws<ArgumentException>(() => ServerPartition.Rules("t", [], ["127.9.9.1"]));
    }
}
