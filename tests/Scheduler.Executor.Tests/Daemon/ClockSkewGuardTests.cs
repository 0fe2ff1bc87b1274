using System.Globalization;
using Dtask.Consul.Http;
using Dtask.Core.State;
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

/// <summary>
/// The skew estimate against the agent and the other executors' stamps, extrapolated with the monotonic clock: a jump of
/// this clock shows at once, the median decides (of two middle values, the one closest to zero), stale and untimed stamps
/// count for nothing.
/// </summary>
public sealed class ClockSkewEstimateTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(2);

    [Fact]
    public void A_jump_of_this_clock_is_seen_at_once_without_a_new_observation()
    {
        var clock = new JumpingClock(Start);
        var guard = new ClockSkewGuard(Limit, clock, new LoggerConfiguration().CreateLogger(), "me");
        guard.Observe(AgentAnswer(clock.RealNow));
        Assert.True(guard.MayWrite);

        clock.Advance(TimeSpan.FromSeconds(3));
        clock.Jump(TimeSpan.FromHours(1));

        Assert.False(guard.MayWrite);
        Assert.InRange(guard.Current.Estimate!.Value.TotalSeconds, 3598.9, 3600.1); // Within the header's one-second resolution.
        clock.Jump(-TimeSpan.FromHours(1));
        Assert.True(guard.MayWrite);
    }

    [Fact]
    public void Peers_ahead_of_a_local_agent_outvote_it()
    {
        // This clock (and its local agent's) are 30 s ahead of two peers: 3 references, median +30 s.
        var (clock, guard) = Started("ahead", 30);
        Deliver(guard, clock, ("a", clock.RealNow), ("b", clock.RealNow));

        Assert.False(guard.MayWrite);
        Assert.Equal(3, guard.Current.References);
        Assert.InRange(guard.Current.Estimate!.Value.TotalSeconds, 28.9, 29.1); // Less the allowance for a late stamp.
    }

    [Fact]
    public void A_stamp_read_late_on_a_loaded_machine_does_not_make_a_good_clock_skewed()
    {
        var clock = new JumpingClock(Start);
        var guard = new ClockSkewGuard(Limit, clock, new LoggerConfiguration().CreateLogger(), "me");
        guard.Observe(AgentAnswer(clock.RealNow));

        // Two stamps read 2.4 s and 2.9 s after they were taken (the writer or this process starved): this clock looks
        // that much ahead, within the limit plus the allowance.
        Deliver(guard, clock, ("a", clock.RealNow - TimeSpan.FromSeconds(2.35)), ("b", clock.RealNow - TimeSpan.FromSeconds(2.85)));
        Assert.True(guard.MayWrite);

        // One 5 s late is beyond it until the next stamp of that peer, read in time, brings the estimate down.
        Deliver(guard, clock, ("a", clock.RealNow - TimeSpan.FromSeconds(5)), ("b", clock.RealNow - TimeSpan.FromSeconds(5)));
        Assert.True(guard.MayWrite); // The lowest of each peer's last three timed stamps counts.
        clock.Advance(ClockSkewGuard.StampInterval);
        Deliver(guard, clock, ("a", clock.RealNow - TimeSpan.FromSeconds(5)), ("b", clock.RealNow - TimeSpan.FromSeconds(5)));
        Assert.True(guard.MayWrite);
        clock.Advance(ClockSkewGuard.StampInterval);
        Deliver(guard, clock, ("a", clock.RealNow - TimeSpan.FromSeconds(5)), ("b", clock.RealNow - TimeSpan.FromSeconds(5)));
        Assert.False(guard.MayWrite); // Three in a row that late: this clock is ahead.
        Deliver(guard, clock, ("a", clock.RealNow), ("b", clock.RealNow));
        Assert.True(guard.MayWrite);
        Assert.InRange(guard.Current.Estimate!.Value.TotalSeconds, -0.1, 0.1);
    }

    [Fact]
    public void A_good_node_is_not_blocked_by_one_bad_peer_even_with_two_clocks()
    {
        var (clock, guard) = Started("good");
        Deliver(guard, clock, ("ahead", clock.RealNow + TimeSpan.FromSeconds(30)));

        // Agent 0 s, peer −30 s: the middle value closest to zero.
        Assert.True(guard.MayWrite);
        Assert.Equal(2, guard.Current.References);
        Assert.InRange(guard.Current.Estimate!.Value.TotalSeconds, -0.6, 0.6);

        // Two peers that agree with each other against this clock: outvoted.
        Deliver(guard, clock, ("ahead", clock.RealNow + TimeSpan.FromSeconds(30)), ("ahead2", clock.RealNow + TimeSpan.FromSeconds(30)));
        Assert.False(guard.MayWrite);
    }

    [Theory]
    [InlineData(new[] { 5.0 }, 5.0)]
    [InlineData(new[] { 30.0, 0.0 }, 0.0)]
    [InlineData(new[] { -30.0, 0.0 }, 0.0)]
    [InlineData(new[] { -30.0, 0.5, 30.0 }, 0.5)]
    [InlineData(new[] { 30.0, 30.0, 0.0, 0.0 }, 0.0)]
    [InlineData(new[] { 30.0, 30.0, 29.0, 0.0 }, 29.0)]
    [InlineData(new[] { -3.0, -4.0, 30.0, -5.0 }, -3.0)]
    public void The_median_of_an_even_count_is_the_middle_value_closest_to_zero(double[] estimates, double median) =>
        Assert.Equal(TimeSpan.FromSeconds(median), ClockSkewGuard.Median([.. estimates.Select(TimeSpan.FromSeconds)]));

    [Fact]
    public void An_agent_answer_that_waited_in_a_blocking_query_is_not_a_reference()
    {
        var clock = new JumpingClock(Start);
        clock.Jump(TimeSpan.FromSeconds(30));
        var guard = new ClockSkewGuard(Limit, clock, new LoggerConfiguration().CreateLogger(), "ahead");

        // Sent 10 s ago, stamped at its return: it would bound the skew to [+19 s, +30 s].
        guard.Observe(new ConsulResponseMeta(7, true, TimeSpan.Zero, DateTimeOffset.FromUnixTimeSeconds(clock.RealNow.ToUnixTimeSeconds()), TimeSpan.FromSeconds(10)));
        Assert.Equal(0, guard.Current.References);

        guard.Observe(AgentAnswer(clock.RealNow));
        Assert.InRange(guard.Current.Estimate!.Value.TotalSeconds, 28.9, 30.1);
    }

    [Fact]
    public void A_registered_peers_timed_stamps_stay_references_when_no_fresh_ones_come_and_a_peer_that_left_is_dropped()
    {
        var clock = new JumpingClock(Start);
        clock.Jump(TimeSpan.FromSeconds(30));
        var guard = new ClockSkewGuard(Limit, clock, new LoggerConfiguration().CreateLogger(), "ahead");
        Deliver(guard, clock, ("good", clock.RealNow));
        Assert.False(guard.MayWrite);

        // No fresh timing for minutes (a loaded machine, a cut-off server): the stamp, extrapolated, still convicts.
        clock.Advance(ClockSkewGuard.StampMaxAge + TimeSpan.FromMinutes(1));
        Assert.False(guard.MayWrite);
        Assert.InRange(guard.Current.Estimate!.Value.TotalSeconds, 28.9, 30.1);

        // Too old to extrapolate, while the peer is still registered: nothing to go by, and no acquittal either.
        clock.Advance(ClockSkewGuard.SampleMaxAge);
        Assert.False(guard.MayWrite);

        // The peer left: a lone node has nothing but its agent.
        clock.Advance(TimeSpan.FromMilliseconds(50));
        guard.ObservePeers([], Meta(TimeSpan.FromMilliseconds(20)));
        Assert.True(guard.MayWrite);
        Assert.Equal(new ClockSkewState(null, false, 0), guard.Current);
    }

    [Fact]
    public void A_node_cut_off_from_fresh_stamps_with_a_local_agent_on_its_own_clock_stays_convicted()
    {
        // 30 s ahead; the local agent shares the clock. Four peers convict it.
        var (clock, guard) = Started("ahead", 30);
        Deliver(guard, clock, ("a", clock.RealNow), ("b", clock.RealNow), ("c", clock.RealNow), ("d", clock.RealNow));
        Assert.False(guard.MayWrite);

        // Its server is cut off for five minutes: only the agent answers, and its watch sees no new stamp.
        for (var i = 0; i < 300; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            guard.Observe(AgentAnswer(clock.GetUtcNow()));
            Assert.False(guard.MayWrite, $"acquitted by its own agent after {i + 1} s");
        }
    }

    [Fact]
    public void A_node_drifting_with_its_agent_is_convicted_by_peers_timed_before_the_drift_even_when_one_is_paused()
    {
        var (clock, guard) = Started("drifting");
        Deliver(guard, clock, ("a", clock.RealNow), ("b", clock.RealNow), ("c", clock.RealNow), ("d", clock.RealNow));
        Assert.True(guard.MayWrite);

        // 0.25 s per second, the agent on the same clock; peer "d" is paused (its stamp gets no fresher).
        var convictedAfter = TimeSpan.Zero;
        for (var i = 1; i <= 40 && guard.MayWrite; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            clock.Jump(TimeSpan.FromMilliseconds(250));
            guard.Observe(AgentAnswer(clock.GetUtcNow()));
            if (i % 10 == 0)
            {
                Deliver(guard, clock, ("a", clock.RealNow), ("b", clock.RealNow), ("c", clock.RealNow), ("d", Start));
            }

            convictedAfter = TimeSpan.FromSeconds(i);
        }

        Assert.False(guard.MayWrite);
        Assert.InRange(convictedAfter, TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(13)); // 2 s of drift, plus the peers' one-second allowance
    }

    [Fact]
    public void A_stamp_found_when_the_watch_starts_or_after_a_gap_is_not_timed()
    {
        var clock = new JumpingClock(Start);
        var guard = new ClockSkewGuard(Limit, clock, new LoggerConfiguration().CreateLogger(), "me");

        // The first answer holds a stamp written 9 s ago: arrival minus stamp would say +9 s.
        guard.ObservePeers([Record("peer", clock.RealNow - TimeSpan.FromSeconds(9))], Meta(TimeSpan.FromMilliseconds(3)));
        Assert.Equal(0, guard.Current.References);

        // An answer sent 5 s after the previous one: its new stamp may have waited that long.
        clock.Advance(TimeSpan.FromSeconds(5));
        guard.ObservePeers([Record("peer", clock.RealNow - TimeSpan.FromSeconds(4))], Meta(TimeSpan.FromMilliseconds(3)));
        Assert.Equal(0, guard.Current.References);

        // A blocking query that waited 8 s and returned with a new stamp: timed.
        clock.Advance(TimeSpan.FromSeconds(8));
        guard.ObservePeers([Record("peer", clock.RealNow)], Meta(TimeSpan.FromSeconds(8)));
        Assert.Equal(1, guard.Current.References);
        Assert.True(guard.MayWrite);
    }

    [Fact]
    public void Becoming_skewed_and_recovering_are_logged_once_each_with_the_references()
    {
        var clock = new JumpingClock(Start);
        var sink = new CapturingSink();
        var guard = new ClockSkewGuard(Limit, clock, new LoggerConfiguration().WriteTo.Sink(sink).CreateLogger(), "me");
        var changes = 0;
        guard.Changed += () => changes++;
        guard.Observe(AgentAnswer(clock.RealNow));
        Deliver(guard, clock, ("a", clock.RealNow), ("b", clock.RealNow));

        clock.Jump(TimeSpan.FromSeconds(-30));
        for (var i = 0; i < 5; i++)
        {
            Assert.False(guard.MayWrite);
        }

        clock.Jump(TimeSpan.FromSeconds(30));
        Assert.True(guard.MayWrite);
        Assert.True(guard.MayWrite);

        Assert.Equal(2, changes);
        var messages = sink.Events.Select(e => e.RenderMessage(CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(2, messages.Count);
        Assert.Matches(@"^clock skew: this clock is (29\.9|30\.0) s behind its references \(median of 3: Consul agent -30\.0 s, node a -(29\.9|30\.0) s, "
            + @"node b -(29\.9|30\.0) s; limit 2\.0 s\); not claiming, nor recording any slot skipped, missed or abandoned", messages[0]);
        Assert.StartsWith("clock skew: back within 2.0 s", messages[1], StringComparison.Ordinal);
    }

    [Fact]
    public void A_node_just_started_beside_registered_peers_writes_nothing_until_two_of_their_clocks_are_timed()
    {
        // This clock and its local agent's are 30 s ahead: the agent alone says nothing is wrong.
        var (clock, guard) = Started("ahead", 30);
        var old = clock.RealNow - TimeSpan.FromSeconds(3);
        guard.ObservePeers([Record("a", old), Record("b", old)], Meta(TimeSpan.FromMilliseconds(2)));

        Assert.False(guard.MayWrite);
        Assert.Equal((false, true), (guard.Current.Skewed, guard.Current.AwaitingPeers));

        // One peer timed is not enough: against the agent, the two-clock rule would give this clock the benefit of the doubt.
        clock.Advance(TimeSpan.FromMilliseconds(50));
        guard.ObservePeers([Record("a", clock.RealNow), Record("b", old)], Meta(TimeSpan.FromMilliseconds(20)));
        Assert.False(guard.MayWrite);
        Assert.Equal((false, true), (guard.Current.Skewed, guard.Current.AwaitingPeers));

        // The second publishes too: timed, the two outvote the agent.
        clock.Advance(TimeSpan.FromMilliseconds(50));
        guard.ObservePeers([Record("a", clock.RealNow - TimeSpan.FromMilliseconds(50)), Record("b", clock.RealNow)], Meta(TimeSpan.FromMilliseconds(20)));
        Assert.False(guard.MayWrite);
        Assert.Equal((true, false), (guard.Current.Skewed, guard.Current.AwaitingPeers));
    }

    [Fact]
    public void A_node_just_started_beside_four_peers_waits_for_three_of_their_clocks()
    {
        // A right clock; of four registered peers, the first two to publish are off (one says so): most must be timed.
        var clock = new JumpingClock(Start);
        var sink = new CapturingSink();
        var guard = new ClockSkewGuard(Limit, clock, new LoggerConfiguration().WriteTo.Sink(sink).CreateLogger(), "right");
        guard.Observe(AgentAnswer(clock.GetUtcNow()));
        var old = clock.RealNow - TimeSpan.FromSeconds(3);
        guard.ObservePeers([Record("a", old), Record("b", old), Record("c", old), Record("d", old)], Meta(TimeSpan.FromMilliseconds(2)));
        clock.Advance(TimeSpan.FromMilliseconds(50));
        guard.ObservePeers([Record("a", clock.RealNow + TimeSpan.FromSeconds(30), NodeRecord.ClockSkewed), Record("b", clock.RealNow + TimeSpan.FromHours(1)),
            Record("c", old), Record("d", old)], Meta(TimeSpan.FromMilliseconds(20)));
        Assert.Equal((false, true), (guard.MayWrite, guard.Current.AwaitingPeers));

        clock.Advance(TimeSpan.FromMilliseconds(50));
        guard.ObservePeers([Record("a", clock.RealNow + TimeSpan.FromSeconds(30) - TimeSpan.FromMilliseconds(50), NodeRecord.ClockSkewed),
            Record("b", clock.RealNow + TimeSpan.FromHours(1) - TimeSpan.FromMilliseconds(50)), Record("c", clock.RealNow), Record("d", old)], Meta(TimeSpan.FromMilliseconds(20)));
        Assert.Equal((false, false), (guard.Current.Skewed, guard.Current.AwaitingPeers));
        Assert.True(guard.MayWrite);

        // The wait is logged when it begins and when it ends.
        Assert.Equal(
            ["clock skew: 4 other executors registered; not claiming until their clocks are timed (at most 30 s)",
             "clock skew: 3 of 4 other executors' clocks timed; claiming from now on unless this clock is beyond the limit"],
            sink.Events.Select(e => e.RenderMessage(CultureInfo.InvariantCulture)));
    }

    [Fact]
    public void A_node_alone_writes_at_once_and_one_whose_peers_are_never_timed_after_three_stamp_intervals()
    {
        var clock = new JumpingClock(Start);
        var alone = new ClockSkewGuard(Limit, clock, new LoggerConfiguration().CreateLogger(), "me");
        alone.Observe(AgentAnswer(clock.RealNow));
        alone.ObservePeers([Record("me", clock.RealNow)], Meta(TimeSpan.FromMilliseconds(2)));
        Assert.True(alone.MayWrite);

        var beside = new ClockSkewGuard(Limit, clock, new LoggerConfiguration().CreateLogger(), "me");
        beside.Observe(AgentAnswer(clock.RealNow));
        beside.ObservePeers([Record("quiet", clock.RealNow - TimeSpan.FromSeconds(5))], Meta(TimeSpan.FromMilliseconds(2)));
        Assert.False(beside.MayWrite);
        clock.Advance(ClockSkewGuard.StampMaxAge - TimeSpan.FromSeconds(1));
        Assert.False(beside.MayWrite);
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.True(beside.MayWrite);
    }

    [Fact]
    public void A_skewed_node_comes_back_only_when_most_of_its_references_agree_not_when_peers_drop_out()
    {
        // 30 s ahead, with a local agent on the same clock: two peers convict it.
        var (clock, guard) = Started("ahead", 30);
        Deliver(guard, clock, ("a", clock.RealNow), ("b", clock.RealNow));
        Assert.False(guard.MayWrite);

        // One peer is gone: the agent and one peer disagree, and the median of two would take the agent's word.
        clock.Advance(TimeSpan.FromMilliseconds(50));
        guard.ObservePeers([Record("a", clock.RealNow)], Meta(TimeSpan.FromMilliseconds(20)));
        Assert.Equal(2, guard.Current.References);
        Assert.False(guard.MayWrite);

        // Set right: the agent (same host clock) and the peer agree with it again.
        clock.Jump(TimeSpan.FromSeconds(-30));
        guard.Observe(AgentAnswer(clock.GetUtcNow()));
        Assert.True(guard.MayWrite);
    }

    [Fact]
    public void Peers_off_in_different_ways_and_known_to_be_do_not_convict_a_node_whose_agent_agrees_with_it()
    {
        // This clock and its agent are right; one peer is 30 s ahead, one jumped an hour; both registrations say so.
        var (clock, guard) = Started("right");
        Deliver(guard, clock, Record("ahead", clock.RealNow + TimeSpan.FromSeconds(30), NodeRecord.ClockSkewed),
            Record("jumped", clock.RealNow + TimeSpan.FromHours(1), NodeRecord.ClockSkewed));

        Assert.True(guard.MayWrite, "convicted by two clocks that are off and disagree with each other");
        Assert.InRange(guard.Current.Estimate!.Value.TotalSeconds, -0.6, 0.6);
        Assert.Equal(3, guard.Current.References);

        // Without what the peers say of themselves, the three are a median of −30 s: the node would be convicted.
        var unaware = new ClockSkewGuard(Limit, clock, new LoggerConfiguration().CreateLogger(), "right");
        unaware.Observe(AgentAnswer(clock.GetUtcNow()));
        Deliver(unaware, clock, Record("ahead", clock.RealNow + TimeSpan.FromSeconds(30)), Record("jumped", clock.RealNow + TimeSpan.FromHours(1)));
        Assert.False(unaware.MayWrite);
    }

    [Fact]
    public void A_listing_without_any_peer_does_not_hand_a_convicted_clock_back_to_its_agent()
    {
        // 30 s ahead with a local agent on its clock: two peers convict it.
        var (clock, guard) = Started("ahead", 30);
        Deliver(guard, clock, Record("a", clock.RealNow), Record("b", clock.RealNow));
        Assert.False(guard.MayWrite);

        // A server restarted on its data lists no executor for a moment: the agent alone is left, and may not acquit it.
        clock.Advance(TimeSpan.FromSeconds(1));
        guard.ObservePeers([], Meta(TimeSpan.FromMilliseconds(20)));
        guard.Observe(AgentAnswer(clock.GetUtcNow()));
        Assert.Equal(1, guard.Current.References);
        Assert.False(guard.MayWrite);

        // Alone for longer than a peer's stamps stay references: the agent is all there is.
        clock.Advance(ClockSkewGuard.SampleMaxAge + TimeSpan.FromSeconds(1));
        guard.Observe(AgentAnswer(clock.GetUtcNow()));
        Assert.True(guard.MayWrite);
    }

    [Theory]
    [InlineData("a right peer beside one 30 s behind that says it is skewed", false)]
    [InlineData("two right peers convicted for a moment, that say they are skewed and agree with each other", true)]
    public void Peers_that_say_they_are_skewed_still_help_convict_a_node_that_is_off(string peers, bool bothSaySkewed)
    {
        // This clock and its local agent are 30 s ahead.
        var (clock, guard) = Started("ahead", 30);
        Deliver(guard, clock, Record("a", clock.RealNow, bothSaySkewed ? NodeRecord.ClockSkewed : null),
            Record("b", clock.RealNow - (bothSaySkewed ? TimeSpan.Zero : TimeSpan.FromSeconds(30)), NodeRecord.ClockSkewed));

        Assert.False(guard.MayWrite, peers);
        Assert.Equal(3, guard.Current.References);
    }

    [Fact]
    public void A_convicted_node_is_not_acquitted_by_its_agent_when_its_peers_are_skewed_ones_that_disagree()
    {
        // 30 s ahead with a local agent on its clock: two right peers convict it.
        var (clock, guard) = Started("ahead", 30);
        Deliver(guard, clock, Record("a", clock.RealNow), Record("b", clock.RealNow));
        Assert.False(guard.MayWrite);

        // One right peer is gone, the other was convicted for a moment, and a third that jumped an hour joins: none of the
        // peers is counted alone, and the agent (which shares this clock) may not acquit it by itself.
        clock.Advance(ClockSkewGuard.StampInterval);
        Deliver(guard, clock, Record("a", clock.RealNow, NodeRecord.ClockSkewed), Record("jumped", clock.RealNow + TimeSpan.FromHours(1), NodeRecord.ClockSkewed));
        Assert.False(guard.MayWrite);
    }

    [Fact]
    public void A_clock_far_ahead_is_not_acquitted_by_a_right_peer_that_was_convicted_and_publishes_a_wrong_skew()
    {
        // This clock and its local agent are 30 s ahead. A right peer, convicted for a while by wrong clocks, says it is
        // skewed and publishes an estimate of 30 s behind: what it says of this clock is still its own reading.
        var (clock, guard) = Started("ahead", 30);
        Deliver(guard, clock, Record("right", clock.RealNow, NodeRecord.ClockSkewed) with { Skew = -29.9 }, Record("right-too", clock.RealNow));

        Assert.False(guard.MayWrite);
    }

    /// <summary>A guard of node <paramref name="node"/> whose clock, and its local agent's, is <paramref name="offsetSeconds"/> off, after one agent answer.</summary>
    private static (JumpingClock Clock, ClockSkewGuard Guard) Started(string node, int offsetSeconds = 0)
    {
        var clock = new JumpingClock(Start);
        clock.Jump(TimeSpan.FromSeconds(offsetSeconds));
        var guard = new ClockSkewGuard(Limit, clock, new LoggerConfiguration().CreateLogger(), node);
        guard.Observe(AgentAnswer(clock.GetUtcNow()));
        return (clock, guard);
    }

    /// <summary>An answer of the agent whose clock reads <paramref name="agent"/> now (truncated to the second, like the header).</summary>
    private static ConsulResponseMeta AgentAnswer(DateTimeOffset agent) =>
        new(1, true, TimeSpan.Zero, DateTimeOffset.FromUnixTimeSeconds(agent.ToUnixTimeSeconds()), TimeSpan.FromMilliseconds(2));

    private static ConsulResponseMeta Meta(TimeSpan requestTime) => new(1, true, TimeSpan.Zero, null, requestTime);

    private static NodeRecord Record(string node, DateTimeOffset clock, string? state = null) =>
        new() { Node = node, Version = "test", StartedAt = Start, Clock = clock, State = state };

    /// <summary>Delivers the peers' registrations as a running nodes watch does (see the other overload).</summary>
    private static void Deliver(ClockSkewGuard guard, JumpingClock clock, params NodeRecord[] peers)
    {
        guard.ObservePeers(null, Meta(TimeSpan.FromMilliseconds(2)));
        clock.Advance(TimeSpan.FromMilliseconds(50));
        guard.ObservePeers(peers, Meta(TimeSpan.FromMilliseconds(20)));
    }

    /// <summary>Delivers the peers' stamps as a running nodes watch does: an answer (untimed) then a blocking answer 50 ms later with fresh stamps.</summary>
    private static void Deliver(ClockSkewGuard guard, JumpingClock clock, params (string Node, DateTimeOffset Clock)[] peers)
    {
        guard.ObservePeers(null, Meta(TimeSpan.FromMilliseconds(2)));
        clock.Advance(TimeSpan.FromMilliseconds(50));
        guard.ObservePeers([.. peers.Select(p => Record(p.Node, p.Clock))], Meta(TimeSpan.FromMilliseconds(20)));
    }
}

/// <summary>A fake clock whose wall time can jump while its monotonic timestamp goes on (like a stepped system clock).</summary>
public sealed class JumpingClock(DateTimeOffset start) : TimeProvider
{
    private readonly FakeTimeProvider real = new(start);
    private TimeSpan offset;

    /// <summary>The true time (what the other clocks read).</summary>
    public DateTimeOffset RealNow => real.GetUtcNow();

    public override DateTimeOffset GetUtcNow() => real.GetUtcNow() + offset;

    public override long GetTimestamp() => real.GetTimestamp();

    public override long TimestampFrequency => real.TimestampFrequency;

    public void Advance(TimeSpan by) => real.Advance(by);

    public void Jump(TimeSpan by) => offset += by;
}
