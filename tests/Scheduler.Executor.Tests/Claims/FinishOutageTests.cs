using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Firing;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Claims;

/// <summary>A claimed run whose finish cannot reach Consul at first: it is recorded, or its lock is freed, never left held.</summary>
public sealed class FinishOutageTests(ConsulFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A child that runs until <paramref name="gate"/> exists.</summary>
    private static string UntilExists(string gate) => $"while [ ! -e '{gate}' ]; do sleep 0.05; done";

    [Fact]
    public async Task A_finish_that_fails_while_the_session_lives_is_retried_until_Consul_answers_and_releases_the_lock()
    {
        await using var world = new ClaimWorld(consul);
        var faults = new FaultInjectingHandler();
        var holder = await world.FaultyExecutorAsync("holder", faults);
        var gate = Path.Combine(Path.GetTempPath(), "dtask-gate-" + Guid.NewGuid().ToString("N"));
        try
        {
            var slot = ClaimWorld.Slot(1);
            var fire = holder.Firing.FireAsync(world.Request(slot, UntilExists(gate)), cancellationToken: Ct);
            Assert.True(await Eventually.TrueAsync(() => holder.Events.Events.Contains($"started {slot}"), TimeSpan.FromSeconds(10)));

            // The agent becomes unreachable for this executor (its session is renewed elsewhere and lives), then the child ends.
            faults.Outage = true;
            await File.WriteAllTextAsync(gate, "", Ct);
            Assert.True(await Eventually.TrueAsync(() => faults.Failed >= 5, TimeSpan.FromSeconds(20)));
            Assert.False(fire.IsCompleted);
            faults.Outage = false;

            var result = await fire;
            Assert.Equal(FireStatus.Ran, result.Status);
            Assert.Equal(RunState.Succeeded, result.Record!.State);
            Assert.Equal(FinishStatus.Recorded, result.Finish!.Status);
            var run = await world.Store.ReadRunAsync(world.Task, Ct);
            Assert.Equal(RunState.Succeeded, run.Record!.State);
            Assert.Equal(RunState.Succeeded, (await world.HistoryAsync(slot))!.State);
            Assert.Null((await world.Store.ReadLockAsync(world.Task, Ct))?.Session);

            // The task is not blocked: the next slot runs.
            var next = await world.ExecutorAsync("next");
            var second = await next.Firing.FireAsync(world.Request(ClaimWorld.Slot(2), "true"), cancellationToken: Ct);
            Assert.Equal(RunState.Succeeded, second.Record!.State);
        }
        finally
        {
            File.Delete(gate);
        }
    }

    [Fact]
    public async Task A_finish_whose_answer_is_lost_after_it_committed_is_recognised_as_recorded()
    {
        await using var world = new ClaimWorld(consul);
        var lost = 0;
        var faults = new FaultInjectingHandler
        {
            // The finish transaction (the only one with an unlock) is applied once, and its answer lost.
            Decide = (method, path, body) => path == "/v1/txn" && body.Contains("\"unlock\"", StringComparison.Ordinal) && Interlocked.Exchange(ref lost, 1) == 0
                ? Fault.AnswerLost : Fault.None,
        };
        var holder = await world.FaultyExecutorAsync("holder", faults);
        var slot = ClaimWorld.Slot(1);

        var result = await holder.Firing.FireAsync(world.Request(slot, "true"), cancellationToken: Ct);

        Assert.Equal(1, faults.Failed);
        Assert.Equal(FinishStatus.Recorded, result.Finish!.Status);
        Assert.Equal(RunState.Succeeded, (await world.Store.ReadRunAsync(world.Task, Ct)).Record!.State);
        Assert.Equal(result.Record!.RunId, (await world.HistoryAsync(slot))!.RunId);
        Assert.Null((await world.Store.ReadLockAsync(world.Task, Ct))?.Session);
    }

    [Fact]
    public async Task A_session_lost_during_the_outage_stops_the_retries_and_the_next_claimer_records_the_run_abandoned()
    {
        await using var world = new ClaimWorld(consul);
        var faults = new FaultInjectingHandler();
        // The session goes through the faults too, and counts as lost 3 s after its last successful renewal.
        var holder = await world.FaultyExecutorAsync("holder", faults, sessionThroughFaults: true,
            new ExecutorSessionOptions { Ttl = TimeSpan.FromSeconds(10), LostMargin = TimeSpan.FromSeconds(7), RenewInterval = TimeSpan.FromSeconds(1) });
        var gate = Path.Combine(Path.GetTempPath(), "dtask-gate-" + Guid.NewGuid().ToString("N"));
        try
        {
            var slot1 = ClaimWorld.Slot(1);
            var fire = holder.Firing.FireAsync(world.Request(slot1, UntilExists(gate)), cancellationToken: Ct);
            Assert.True(await Eventually.TrueAsync(() => holder.Events.Events.Contains($"started {slot1}"), TimeSpan.FromSeconds(10)));

            faults.Outage = true;
            await File.WriteAllTextAsync(gate, "", Ct);
            var result = await fire.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            Assert.True(holder.Session.IsLost);
            Assert.Equal(FireStatus.Ran, result.Status);
            Assert.Equal(FinishStatus.Unrecorded, result.Finish!.Status);

            // Consul ends the session (its TTL passes unrenewed; here, at once): the lock frees.
            await world.Client.Sessions.DestroyAsync(holder.Session.Id, Ct);

            var next = await world.ExecutorAsync("next");
            var slot2 = ClaimWorld.Slot(2);
            var second = await next.Firing.FireAsync(world.Request(slot2, "true"), cancellationToken: Ct);
            Assert.Equal(FireStatus.Ran, second.Status);
            Assert.Equal(RunState.Succeeded, second.Record!.State);
            Assert.Equal(slot1, second.Abandoned!.Slot);
            var abandoned = await world.HistoryAsync(slot1);
            Assert.Equal(RunState.Abandoned, abandoned!.State);
            Assert.Equal("holder", abandoned.Node);
        }
        finally
        {
            faults.Outage = false;
            File.Delete(gate);
        }
    }

    [Fact]
    public async Task A_finish_refused_for_good_releases_the_lock_and_keeps_the_run_in_history()
    {
        await using var world = new ClaimWorld(consul);
        var faults = new FaultInjectingHandler
        {
            Decide = (method, path, body) => path == "/v1/txn" && body.Contains("\"unlock\"", StringComparison.Ordinal) ? Fault.Forbidden : Fault.None,
        };
        var holder = await world.FaultyExecutorAsync("holder", faults);
        var slot1 = ClaimWorld.Slot(1);

        var result = await holder.Firing.FireAsync(world.Request(slot1, "true"), cancellationToken: Ct);

        Assert.Equal(FinishStatus.Refused, result.Finish!.Status);
        Assert.True(result.Finish.HistoryWritten);
        Assert.Null((await world.Store.ReadLockAsync(world.Task, Ct))?.Session);
        Assert.Equal(RunState.Succeeded, (await world.HistoryAsync(slot1))!.State);

        var next = await world.ExecutorAsync("next");
        var second = await next.Firing.FireAsync(world.Request(ClaimWorld.Slot(2), "true"), cancellationToken: Ct);
        Assert.Equal(RunState.Succeeded, second.Record!.State);
        Assert.Equal(slot1, second.Abandoned!.Slot);
        Assert.Equal(RunState.Succeeded, (await world.HistoryAsync(slot1))!.State); // The run's own account stays.
    }
}
