using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Firing;
using Dtask.Executor.Processes;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Claims;

/// <summary>A slot is either claimed or marked skipped/missed, never both, whatever the order of the writers.</summary>
public sealed class MarkerRaceTests(ConsulFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_slot_marked_skipped_cannot_be_claimed_after_the_holder_finishes()
    {
        await using var world = new ClaimWorld(consul);
        var holder = await world.ExecutorAsync("holder");
        using var release = new StopRequest();
        var slot1 = ClaimWorld.Slot(1);
        var slot2 = ClaimWorld.Slot(2);
        var running = holder.Firing.FireAsync(world.Request(slot1, "sleep 300 & wait"), release, Ct);
        Assert.True(await Eventually.TrueAsync(() => holder.Events.Events.Contains($"started {slot1}"), TimeSpan.FromSeconds(10)));

        var first = await world.ExecutorAsync("first");
        var skipped = await first.Firing.FireAsync(world.Request(slot2, "true") with { Concurrency = ConcurrencyPolicy.Forbid }, cancellationToken: Ct);
        Assert.Equal(FireStatus.Busy, skipped.Status);
        Assert.True(skipped.Marked);

        release.Stop(StopReason.Other("test over"));
        await running;

        // The lock is free and the run record is behind slot2, but slot2 is recorded: nobody claims it now.
        var second = await world.ExecutorAsync("second");
        var late = await second.Firing.FireAsync(world.Request(slot2, "true") with { Concurrency = ConcurrencyPolicy.Forbid }, cancellationToken: Ct);
        Assert.Equal(FireStatus.AlreadyClaimed, late.Status);
        Assert.DoesNotContain($"started {slot2}", second.Events.Events);
        Assert.Equal(RunState.Skipped, (await world.HistoryAsync(slot2))!.State);
        var run = await world.Store.ReadRunAsync(world.Task, Ct);
        Assert.Equal(slot1, run.Record!.Slot);
        Assert.Null((await world.Store.ReadLockAsync(world.Task, Ct))?.Session);
    }

    [Fact]
    public async Task A_skip_marker_is_not_written_when_a_claim_came_in_after_the_record_was_read()
    {
        await using var world = new ClaimWorld(consul);
        var claimer = new SlotClaimer(world.Store);
        var recorder = new RunRecorder(world.Store);
        var slot1 = ClaimWorld.Slot(1);
        var slot2 = ClaimWorld.Slot(2);
        var a = await world.SessionAsync();
        var b = await world.SessionAsync();
        var c = await world.SessionAsync();

        var held = (await claimer.ClaimAsync(world.Task, slot1, "a", a.Id, cancellationToken: Ct)).Claim!;
        var busy = await claimer.ClaimAsync(world.Task, slot2, "c", c.Id, cancellationToken: Ct);
        Assert.Equal(ClaimStatus.Busy, busy.Status);

        // Between c's read and c's marker: a finishes, b claims slot2.
        Assert.Equal(FinishStatus.Recorded, (await recorder.FinishAsync(held, held.Record with { State = RunState.Succeeded }, 10, CancellationToken.None, Ct)).Status);
        var claimed = await claimer.ClaimAsync(world.Task, slot2, "b", b.Id, cancellationToken: Ct);
        Assert.Equal(ClaimStatus.Claimed, claimed.Status);

        var marked = await new SlotMarker(world.Store).RecordSkippedAsync(world.Task, slot2, "c", "still-running", busy.CurrentIndex, Ct);
        Assert.Equal(MarkStatus.RecordChanged, marked);
        Assert.Null(await world.HistoryAsync(slot2));

        // The run that holds slot2 still writes its history entry when it finishes.
        var final = claimed.Claim!.Record with { State = RunState.Succeeded };
        Assert.Equal(FinishStatus.Recorded, (await recorder.FinishAsync(claimed.Claim, final, 10, CancellationToken.None, Ct)).Status);
        var history = await world.HistoryAsync(slot2);
        Assert.Equal(RunState.Succeeded, history!.State);
        Assert.Equal("b", history.Node);
    }

    [Fact]
    public async Task A_skipping_executor_whose_marker_rolls_back_decides_again_and_runs_the_slot_itself()
    {
        await using var world = new ClaimWorld(consul);
        var holder = await world.ExecutorAsync("holder");
        using var release = new StopRequest();
        var slot1 = ClaimWorld.Slot(1);
        var slot2 = ClaimWorld.Slot(2);
        var running = holder.Firing.FireAsync(world.Request(slot1, "sleep 300 & wait"), release, Ct);
        Assert.True(await Eventually.TrueAsync(() => holder.Events.Events.Contains($"started {slot1}"), TimeSpan.FromSeconds(10)));

        // Just before the skip marker is sent, the holder finishes.
        var faults = new FaultInjectingHandler();
        var finished = 0;
        faults.BeforeSend = async (method, path, body) =>
        {
            if (path == "/v1/txn" && body.Contains("\"check-index\"", StringComparison.Ordinal) && Interlocked.Exchange(ref finished, 1) == 0)
            {
                release.Stop(StopReason.Other("finished"));
                await running;
            }
        };
        var late = await world.FaultyExecutorAsync("late", faults);
        var result = await late.Firing.FireAsync(world.Request(slot2, "true") with { Concurrency = ConcurrencyPolicy.Forbid }, cancellationToken: Ct);

        Assert.Equal(1, finished);
        Assert.Equal(FireStatus.Ran, result.Status);
        var history = await world.HistoryAsync(slot2);
        Assert.Equal(RunState.Succeeded, history!.State);
        Assert.Equal("late", history.Node);
    }

    [Fact]
    public async Task A_slot_the_run_record_holds_is_never_marked_missed()
    {
        await using var world = new ClaimWorld(consul);
        var claimer = new SlotClaimer(world.Store);
        var marker = new SlotMarker(world.Store);
        var slot1 = ClaimWorld.Slot(1);
        var a = await world.SessionAsync();
        var held = (await claimer.ClaimAsync(world.Task, slot1, "a", a.Id, cancellationToken: Ct)).Claim!;

        Assert.Equal(MarkStatus.HeldByRun, await marker.RecordMissedAsync(world.Task, slot1, "waking", "not-fired-in-time", 10, Ct));
        Assert.Null(await world.HistoryAsync(slot1));

        await new RunRecorder(world.Store).FinishAsync(held, held.Record with { State = RunState.Succeeded }, 10, CancellationToken.None, Ct);
        Assert.NotEqual(MarkStatus.Written, await marker.RecordMissedAsync(world.Task, slot1, "waking", "not-fired-in-time", 10, Ct));
        Assert.Equal(RunState.Succeeded, (await world.HistoryAsync(slot1))!.State);
        Assert.Equal(RunState.Succeeded, (await world.Store.ReadRunAsync(world.Task, Ct)).Record!.State);
    }

    [Fact]
    public async Task A_slot_marked_missed_while_an_older_run_goes_on_cannot_be_claimed_afterwards()
    {
        await using var world = new ClaimWorld(consul);
        var claimer = new SlotClaimer(world.Store);
        var slot1 = ClaimWorld.Slot(1);
        var slot2 = ClaimWorld.Slot(2);
        var a = await world.SessionAsync();
        var held = (await claimer.ClaimAsync(world.Task, slot1, "a", a.Id, cancellationToken: Ct)).Claim!;

        Assert.Equal(MarkStatus.Written, await new SlotMarker(world.Store).RecordMissedAsync(world.Task, slot2, "b", "not-fired-in-time", 10, Ct));
        await new RunRecorder(world.Store).FinishAsync(held, held.Record with { State = RunState.Succeeded }, 10, CancellationToken.None, Ct);

        var late = await claimer.ClaimAsync(world.Task, slot2, "c", (await world.SessionAsync()).Id, cancellationToken: Ct);
        Assert.Equal(ClaimStatus.AlreadyClaimed, late.Status);
        Assert.Equal(RunState.Missed, (await world.HistoryAsync(slot2))!.State);
        Assert.Null((await world.Store.ReadLockAsync(world.Task, Ct))?.Session);
    }

    [Fact]
    public async Task A_claim_whose_answer_was_lost_is_recognised_as_its_own_when_tried_again_with_the_same_run_id()
    {
        await using var world = new ClaimWorld(consul);
        var claimer = new SlotClaimer(world.Store);
        var session = await world.SessionAsync();
        var slot = ClaimWorld.Slot(1);
        var runId = SlotClaimer.NewRunId(slot);

        var first = await claimer.ClaimAsync(world.Task, slot, "a", session.Id, runId, Ct);
        var again = await claimer.ClaimAsync(world.Task, slot, "a", session.Id, runId, Ct);
        var other = await claimer.ClaimAsync(world.Task, slot, "a", session.Id, SlotClaimer.NewRunId(slot), Ct);

        Assert.Equal(ClaimStatus.Claimed, again.Status);
        Assert.Equal(first.Claim!.Fence, again.Claim!.Fence);
        Assert.Equal(ClaimStatus.AlreadyClaimed, other.Status);
    }
}
