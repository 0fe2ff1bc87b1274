using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Tests.Claims;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// A claim whose transaction commits but whose answer is lost, while Consul stays unreachable: the slot is never left
/// held without a child. Once Consul answers again, the claim is read back (run id and session) and released, recorded
/// <c>missed</c> with reason <c>claim-unconfirmed</c>, the lock freed; the next slot runs.
/// </summary>
public sealed class UnconfirmedClaimTests(ConsulFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Loses the answer of the first claim transaction (the one with a <c>lock</c>), and cuts the agent off from then on.</summary>
    private static void LoseFirstClaimAnswerThenCutOff(FaultInjectingHandler faults)
    {
        var lost = 0;
        faults.Decide = (_, path, body) =>
        {
            if (path == "/v1/txn" && body.Contains("\"lock\"", StringComparison.Ordinal) && Interlocked.Exchange(ref lost, 1) == 0)
            {
                faults.Outage = true; // Every later request fails; this one is sent and its answer lost.
                return Fault.AnswerLost;
            }

            return Fault.None;
        };
    }

    [Fact]
    public async Task A_claim_whose_answer_is_lost_and_outage_outlasts_the_deadline_is_released_recorded_missed_and_the_next_slot_runs()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "lossy");
        var slot = ClaimWorld.Slot(1);
        var ticket = ContenderRig.TicketNow(slot, TimeSpan.FromSeconds(1.5));
        LoseFirstClaimAnswerThenCutOff(rig.Faults);

        var contending = rig.Contender.ContendAsync(rig.Definition, ticket, Ct);
        Assert.True(await Eventually.TrueAsync(() => rig.Faults.Outage && DateTimeOffset.UtcNow > ticket.Deadline + TimeSpan.FromSeconds(0.5) && rig.Faults.Failed >= 3,
            TimeSpan.FromSeconds(15)));
        // The claim committed: the slot is held by this node's session, with no child.
        var held = (await world.Store.ReadRunAsync(world.Task, Ct)).Record!;
        Assert.Equal((slot, RunState.Running, "lossy"), (held.Slot, held.State, held.Node));
        Assert.False(contending.IsCompleted);

        rig.Faults.Outage = false;
        await contending.WaitAsync(TimeSpan.FromSeconds(20), Ct);

        var marker = await world.HistoryAsync(slot);
        Assert.NotNull(marker);
        Assert.Equal((RunState.Missed, SlotClaimer.ClaimUnconfirmedReason, "lossy", held.RunId), (marker.State, marker.Reason, marker.Node, marker.RunId));
        var record = (await world.Store.ReadRunAsync(world.Task, Ct)).Record!;
        Assert.Equal((slot, RunState.Missed, SlotClaimer.ClaimUnconfirmedReason), (record.Slot, record.State, record.Reason));
        Assert.Null((await world.Store.ReadLockAsync(world.Task, Ct))?.Session);
        Assert.Contains($"missed {slot}", rig.Events.Events);
        Assert.DoesNotContain($"started {slot}", rig.Events.Events);

        // Not blocked: the next slot runs here.
        var next = slot + 2;
        await rig.Contender.ContendAsync(rig.Definition, ContenderRig.TicketNow(next, TimeSpan.FromSeconds(10)), Ct);
        Assert.Contains($"started {next}", rig.Events.Events);
        Assert.Equal(RunState.Succeeded, (await world.HistoryAsync(next))!.State);
    }

    [Fact]
    public async Task A_claim_left_unconfirmed_at_shutdown_is_released_before_the_next_slot_is_claimed()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "lossy");
        var slot = ClaimWorld.Slot(1);
        LoseFirstClaimAnswerThenCutOff(rig.Faults);

        // Shutdown comes while Consul is still unreachable: the claim can be neither read back nor released.
        using var claiming = new CancellationTokenSource();
        var contending = rig.Contender.ContendAsync(rig.Definition, ContenderRig.TicketNow(slot, TimeSpan.FromSeconds(30)), claiming.Token);
        Assert.True(await Eventually.TrueAsync(() => rig.Faults.Outage && rig.Faults.Failed >= 3, TimeSpan.FromSeconds(15)));
        await claiming.CancelAsync();
        await contending.WaitAsync(TimeSpan.FromSeconds(20), Ct);
        Assert.Contains("could not be read back nor released before shutdown", rig.Log.AllText(), StringComparison.Ordinal);
        Assert.Equal(RunState.Running, (await world.Store.ReadRunAsync(world.Task, Ct)).Record!.State);

        // Consul answers again; the next slot's contention releases the held claim first, then claims and runs.
        rig.Faults.Outage = false;
        var next = slot + 2;
        await rig.Contender.ContendAsync(rig.Definition, ContenderRig.TicketNow(next, TimeSpan.FromSeconds(10)), Ct);

        var marker = await world.HistoryAsync(slot);
        Assert.NotNull(marker);
        Assert.Equal((RunState.Missed, SlotClaimer.ClaimUnconfirmedReason), (marker.State, marker.Reason));
        Assert.DoesNotContain($"started {slot}", rig.Events.Events);
        Assert.Contains($"started {next}", rig.Events.Events);
        Assert.Equal(RunState.Succeeded, (await world.HistoryAsync(next))!.State);
    }

    [Fact]
    public async Task A_claim_whose_answer_is_lost_is_read_back_and_run_while_its_deadline_has_not_passed()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "lossy");
        var slot = ClaimWorld.Slot(1);
        LoseFirstClaimAnswerThenCutOff(rig.Faults);

        var contending = rig.Contender.ContendAsync(rig.Definition, ContenderRig.TicketNow(slot, TimeSpan.FromSeconds(30)), Ct);
        Assert.True(await Eventually.TrueAsync(() => rig.Faults.Outage && rig.Faults.Failed >= 3, TimeSpan.FromSeconds(15)));
        rig.Faults.Outage = false;
        await contending.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Single(rig.Events.Events, e => e == $"started {slot}");
        var history = await world.HistoryAsync(slot);
        Assert.Equal((RunState.Succeeded, "lossy"), (history!.State, history.Node));
        Assert.Null((await world.Store.ReadLockAsync(world.Task, Ct))?.Session);
    }

    [Fact]
    public async Task A_claim_read_back_and_running_is_not_released_by_the_next_slots_contention()
    {
        await using var world = new ClaimWorld(consul);
        await using var rig = await ContenderRig.StartAsync(consul, world, "lossy");
        var definition = ContenderRig.DefinitionOf(world.Task, new ScheduledTaskSpec { Every = "2s", Shell = "sleep 3", ConcurrencyPolicy = ConcurrencyPolicy.Forbid });
        var slot = ClaimWorld.Slot(1);
        LoseFirstClaimAnswerThenCutOff(rig.Faults);

        var first = rig.Contender.ContendAsync(definition, ContenderRig.TicketNow(slot, TimeSpan.FromSeconds(30)), Ct);
        Assert.True(await Eventually.TrueAsync(() => rig.Faults.Outage && rig.Faults.Failed >= 3, TimeSpan.FromSeconds(15)));
        rig.Faults.Outage = false;
        Assert.True(await Eventually.TrueAsync(() => rig.Events.Events.Contains($"started {slot}"), TimeSpan.FromSeconds(15)));

        // The next slot comes while that child runs: the claim it read back is live, not one to release.
        var next = slot + 2;
        await rig.Contender.ContendAsync(definition, ContenderRig.TicketNow(next, TimeSpan.FromSeconds(1.5)), Ct);
        await first.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        var history = await world.HistoryAsync(slot);
        Assert.Equal((RunState.Succeeded, "lossy"), (history!.State, history.Node));
        Assert.Equal(RunState.Skipped, (await world.HistoryAsync(next))!.State);
        Assert.DoesNotContain($"missed {slot}", rig.Events.Events);
        Assert.DoesNotContain($"started {next}", rig.Events.Events);
    }
}
