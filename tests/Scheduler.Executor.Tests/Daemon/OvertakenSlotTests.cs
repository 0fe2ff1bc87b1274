using Dtask.Core.State;
using Dtask.Executor.Daemon;
using Dtask.Executor.Tests.Claims;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// A slot whose run record moved on to a later slot before it was claimed (its contenders waited for Consul past its
/// deadline while the next slot was claimed) is recorded missed, never left without a run or a record, since it lies
/// inside the window its history still keeps (see SupersededSlotTests for slots before it); and a node cut off from
/// Consul keeps its slot until it can record it.
/// </summary>
public sealed class OvertakenSlotTests(ConsulFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_claim_whose_read_is_answered_after_the_next_slot_was_claimed_records_the_slot_missed()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "waiting");
        var next = await world.ExecutorAsync("next");
        var slot = ClaimWorld.Slot(1);
        var ticket = ContenderRig.TicketNow(slot, TimeSpan.FromSeconds(1));
        var runPath = "/v1/kv/" + world.Layout.RunKey(world.Task.Namespace, world.Task.Name);
        var held = 0;

        // The claim's consistent read of the run record waits (as during a leader election) until the deadline has passed
        // and another node has claimed and run the next slot; then it is answered.
        rig.Faults.BeforeSend = async (method, path, _) =>
        {
            if (method == HttpMethod.Get && path == runPath && Interlocked.Exchange(ref held, 1) == 0)
            {
                var ran = await next.Firing.FireAsync(world.Request(slot + 2, "true"), cancellationToken: Ct);
                Assert.Equal(RunState.Succeeded, ran.Record!.State);
                var late = ticket.Deadline - DateTimeOffset.UtcNow;
                if (late > TimeSpan.Zero)
                {
                    await Task.Delay(late + TimeSpan.FromMilliseconds(50), Ct);
                }
            }
        };

        await rig.Contender.ContendAsync(rig.Definition, ticket, Ct);

        Assert.Equal(1, held);
        var marker = await world.HistoryAsync(slot);
        Assert.NotNull(marker);
        Assert.Equal(RunState.Missed, marker.State);
        Assert.Equal("not-claimed-before-deadline", marker.Reason);
        Assert.Contains($"missed {slot}", rig.Events.Events);
        Assert.Equal(slot + 2, (await world.Store.ReadRunAsync(world.Task, Ct)).Record!.Slot);
    }

    [Fact]
    public async Task A_later_ranked_node_that_finds_the_next_slot_claimed_records_the_slot_missed()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "waiting");
        rig.SeeNodes("first");
        var slot = ClaimWorld.Slot(1);
        while (SlotRanking.ByHash(world.Task, slot, ["first", "waiting"])[0] != "first")
        {
            slot += 2;
        }

        // The first-ranked node is gone; by this node's turn the next slot has been claimed and run by a third one.
        var next = await world.ExecutorAsync("next");
        Assert.Equal(RunState.Succeeded, (await next.Firing.FireAsync(world.Request(slot + 2, "true"), cancellationToken: Ct)).Record!.State);

        await rig.Contender.ContendAsync(rig.Definition, ContenderRig.TicketNow(slot, TimeSpan.FromSeconds(2)), Ct);

        var marker = await world.HistoryAsync(slot);
        Assert.NotNull(marker);
        Assert.Equal(RunState.Missed, marker.State);
        Assert.Contains($"missed {slot}", rig.Events.Events);
    }

    [Fact]
    public async Task A_slot_already_run_is_not_recorded_again_when_the_record_has_moved_past_it()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "waiting");
        var other = await world.ExecutorAsync("other");
        var slot = ClaimWorld.Slot(1);
        Assert.Equal(RunState.Succeeded, (await other.Firing.FireAsync(world.Request(slot, "true"), cancellationToken: Ct)).Record!.State);
        Assert.Equal(RunState.Succeeded, (await other.Firing.FireAsync(world.Request(slot + 2, "true"), cancellationToken: Ct)).Record!.State);

        await rig.Contender.ContendAsync(rig.Definition, ContenderRig.TicketNow(slot, TimeSpan.FromSeconds(2)), Ct);

        Assert.Equal(RunState.Succeeded, (await world.HistoryAsync(slot))!.State);
        Assert.DoesNotContain($"missed {slot}", rig.Events.Events);
    }

    [Fact]
    public async Task A_node_cut_off_from_Consul_keeps_its_slot_until_it_can_record_it()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "cut-off");
        var slot = ClaimWorld.Slot(1);
        var ticket = ContenderRig.TicketNow(slot, TimeSpan.FromMilliseconds(500));

        rig.Faults.Outage = true;
        var contending = rig.Contender.ContendAsync(rig.Definition, ticket, Ct);
        Assert.True(await Eventually.TrueAsync(() => DateTimeOffset.UtcNow > ticket.Deadline + TimeSpan.FromSeconds(1) && rig.Faults.Failed >= 5, TimeSpan.FromSeconds(10)));
        Assert.False(contending.IsCompleted);
        Assert.Null(await world.HistoryAsync(slot));

        rig.Faults.Outage = false;
        await contending.WaitAsync(TimeSpan.FromSeconds(20), Ct);

        var marker = await world.HistoryAsync(slot);
        Assert.NotNull(marker);
        Assert.Equal(RunState.Missed, marker.State);
        Assert.Equal("cut-off", marker.Node);
    }
}
