using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Firing;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Claims;

/// <summary>Waits on lock-delay and a termination grace period: its own class, so it runs beside the others.</summary>
public sealed class AbandonedRunTests(ConsulFixture consul)
{
    [Fact]
    public async Task A_holder_whose_session_is_destroyed_is_stopped_marked_abandoned_and_cannot_overwrite_the_newer_claim()
    {
        await using var world = new ClaimWorld(consul);
        var holder = await world.ExecutorAsync("holder", grace: TimeSpan.FromSeconds(3));
        var slot1 = ClaimWorld.Slot(1);
        var slot2 = ClaimWorld.Slot(2);
        // Ignores SIGTERM, so the holder needs the whole grace period to finish: the next claim comes first.
        var running = holder.Firing.FireAsync(world.Request(slot1, "trap '' TERM; sleep 300 & sleep 300 & wait"), cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(await Eventually.TrueAsync(() => holder.Events.Events.Contains($"started {slot1}"), TimeSpan.FromSeconds(10)));

        // Another actor destroys the holder's session: Consul releases the lock.
        await world.Client.Sessions.DestroyAsync(holder.Session.Id, TestContext.Current.CancellationToken);

        var next = await world.ExecutorAsync("next");
        using var stopSecond = new Dtask.Executor.Processes.StopRequest();
        var second = next.Firing.FireAsync(world.Request(slot2, "sleep 300 & wait"), stopSecond, TestContext.Current.CancellationToken);

        // The next claimer marks the old record abandoned and claims (after the dead session's 1 s lock-delay).
        Assert.True(await Eventually.TrueAsync(() => next.Events.Events.Contains($"started {slot2}"), TimeSpan.FromSeconds(10)));
        var abandoned = await world.HistoryAsync(slot1);
        Assert.Equal(RunState.Abandoned, abandoned!.State);
        Assert.Equal("holder", abandoned.Node);

        var lost = await running;
        Assert.Equal(FireStatus.Ran, lost.Status);
        Assert.Equal(RunState.Lost, lost.Record!.State);
        Assert.StartsWith("lock-lost", lost.Record.Reason, StringComparison.Ordinal);
        Assert.Equal(FinishStatus.LockLost, lost.Finish!.Status);
        Assert.False(lost.Finish.HistoryWritten); // history/<slot1> already held the abandoned entry
        Assert.Empty(Dtask.Executor.Processes.PosixProcessGroups.Members(lost.Outcome!.ProcessGroupId!.Value));
        Assert.Contains($"lost {slot1}", holder.Events.Events);

        // The fence was respected: the run record is still the newer claim's.
        var run = await world.Store.ReadRunAsync(world.Task, TestContext.Current.CancellationToken);
        Assert.Equal(slot2, run.Record!.Slot);
        Assert.Equal("next", run.Record.Node);
        Assert.True(run.Record.IsRunning);

        Assert.False(second.IsCompleted);
        stopSecond.Stop(Dtask.Executor.Processes.StopReason.Other("test over"));
        Assert.Equal(RunState.Failed, (await second).Record!.State);
        Assert.NotNull((await second).Abandoned);
    }
}
