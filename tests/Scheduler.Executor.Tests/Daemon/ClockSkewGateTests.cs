using Dtask.Core.State;
using Dtask.Executor.Daemon;
using Dtask.Executor.Tests.Claims;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// A contender whose clock guard says skewed writes nothing on a real Consul agent: no claim, no skipped marker, no
/// missed marker (neither kind); back within the limit, the same contender claims and records again.
/// </summary>
public sealed class ClockSkewGateTests(ConsulFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_skewed_contender_claims_nothing_and_records_no_slot_until_it_is_back_within_the_limit()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "ahead");
        SeePeerAt(rig.Skew, TimeSpan.FromSeconds(-30)); // Its only reference reads 30 s less than this clock.
        Assert.False(rig.Skew.MayWrite);
        var slot = ClaimWorld.Slot(1);

        // Unclaimed slot: no claim before the deadline, and no missed marker after it.
        await rig.Contender.ContendAsync(rig.Definition, ContenderRig.TicketNow(slot, TimeSpan.FromSeconds(1)), Ct);
        Assert.Null((await world.Store.ReadRunAsync(world.Task, Ct)).Record);
        Assert.Null(await world.HistoryAsync(slot));

        // Slots the planner found overdue: no missed marker.
        await rig.Contender.RecordMissedAsync(rig.Definition, [slot + 2, slot + 4], "not-fired-in-time", Ct);
        Assert.Null(await world.HistoryAsync(slot + 2));
        Assert.Null(await world.HistoryAsync(slot + 4));

        // Another node's run is going on (Forbid): no skipped marker.
        var holder = await world.ExecutorAsync("holder");
        var held = holder.Firing.FireAsync(world.Request(slot + 6, "sleep 3"), cancellationToken: Ct);
        Assert.True(await Eventually.TrueAsync(() => holder.Events.Events.Contains($"started {slot + 6}"), TimeSpan.FromSeconds(10)));
        await rig.Contender.ContendAsync(rig.Definition, ContenderRig.TicketNow(slot + 8, TimeSpan.FromSeconds(1)), Ct);
        Assert.Null(await world.HistoryAsync(slot + 8));
        Assert.Equal(RunState.Succeeded, (await held).Record!.State);
        Assert.Empty(rig.Events.Events);

        // Back within the limit, the same calls write: the guard is what held them back.
        SeePeerAt(rig.Skew, TimeSpan.Zero);
        Assert.True(rig.Skew.MayWrite);
        await rig.Contender.RecordMissedAsync(rig.Definition, [slot + 10], "not-fired-in-time", Ct);
        Assert.Equal(RunState.Missed, (await world.HistoryAsync(slot + 10))!.State);
        await rig.Contender.ContendAsync(rig.Definition, ContenderRig.TicketNow(slot + 12, TimeSpan.FromSeconds(5)), Ct);
        Assert.Equal(RunState.Succeeded, (await world.HistoryAsync(slot + 12))!.State);
        Assert.Equal("ahead", (await world.HistoryAsync(slot + 12))!.Node);
    }

    /// <summary>Delivers, as the nodes watch does, one peer whose clock reads this clock plus <paramref name="offset"/>.</summary>
    private static void SeePeerAt(ClockSkewGuard guard, TimeSpan offset)
    {
        var meta = new Dtask.Consul.Http.ConsulResponseMeta(1, true, TimeSpan.Zero, null, TimeSpan.FromMilliseconds(1));
        guard.ObservePeers(null, meta);
        guard.ObservePeers([new NodeRecord { Node = "reference", Version = "test", StartedAt = DateTimeOffset.UtcNow, Clock = DateTimeOffset.UtcNow + offset }], meta);
    }
}
