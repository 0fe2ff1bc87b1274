using Dtask.Consul;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Claims;
using Dtask.Executor.Firing;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Claims;

public sealed class SlotClaimTests(ConsulFixture consul)
{
    [Fact]
    public async Task Two_claimers_racing_for_one_slot_get_one_claim_and_one_already_claimed()
    {
        await using var world = new ClaimWorld(consul);
        var claimer = new SlotClaimer(world.Store);
        for (var round = 0; round < 5; round++)
        {
            var a = await world.SessionAsync();
            var b = await world.SessionAsync();
            var slot = ClaimWorld.Slot(round);
            var outcomes = await Task.WhenAll(
                claimer.ClaimAsync(world.Task, slot, "node-a", a.Id, cancellationToken: TestContext.Current.CancellationToken),
                claimer.ClaimAsync(world.Task, slot, "node-b", b.Id, cancellationToken: TestContext.Current.CancellationToken));

            var claimed = Assert.Single(outcomes, o => o.Status == ClaimStatus.Claimed);
            var other = Assert.Single(outcomes, o => o.Status != ClaimStatus.Claimed);
            Assert.True(other.Status is ClaimStatus.AlreadyClaimed or ClaimStatus.Busy, other.ToString());
            var stored = await world.Store.ReadRunAsync(world.Task, TestContext.Current.CancellationToken);
            Assert.Equal(claimed.Claim!.RunId, stored.Record!.RunId);
            Assert.Equal(claimed.Claim.Fence.Value, stored.ModifyIndex);

            // Release for the next round: finish the claim.
            var finish = await new RunRecorder(world.Store).FinishAsync(claimed.Claim, claimed.Claim.Record with { State = RunState.Succeeded }, 10, CancellationToken.None, TestContext.Current.CancellationToken);
            Assert.Equal(FinishStatus.Recorded, finish.Status);
        }
    }

    [Fact]
    public async Task A_claim_overtaken_by_a_whole_run_of_an_earlier_slot_reads_again_and_claims_its_slot()
    {
        await using var world = new ClaimWorld(consul);
        var faults = new FaultInjectingHandler();
        using var client = new ConsulClient(consul.Agent.ClientOptions(), faults);
        var late = new SlotClaimer(new RunStateStore(client, world.Layout));
        var early = new SlotClaimer(world.Store);
        var earlySession = await world.SessionAsync();
        var lateSession = await world.SessionAsync();
        var overtaken = 0;
        faults.BeforeSend = async (method, path, body) =>
        {
            if (path.StartsWith("/v1/txn", StringComparison.Ordinal) && Interlocked.Exchange(ref overtaken, 1) == 0)
            {
                // Between the later slot's read and its claim: the earlier slot is claimed, runs and finishes (the lock
                // is free again, the record names an earlier slot, and the index the later claim read is gone).
                var run = await early.ClaimAsync(world.Task, ClaimWorld.Slot(1), "node-a", earlySession.Id, cancellationToken: CancellationToken.None);
                Assert.Equal(ClaimStatus.Claimed, run.Status);
                var finished = await new RunRecorder(world.Store).FinishAsync(run.Claim!, run.Claim!.Record with { State = RunState.Succeeded }, 10, CancellationToken.None, CancellationToken.None);
                Assert.Equal(FinishStatus.Recorded, finished.Status);
            }
        };

        var outcome = await late.ClaimAsync(world.Task, ClaimWorld.Slot(2), "node-b", lateSession.Id, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(1, overtaken);
        Assert.Equal(ClaimStatus.Claimed, outcome.Status);
        var stored = await world.Store.ReadRunAsync(world.Task, TestContext.Current.CancellationToken);
        Assert.Equal((ClaimWorld.Slot(2), "node-b", RunState.Running), (stored.Record!.Slot, stored.Record.Node, stored.Record.State));
        Assert.Equal(RunState.Succeeded, (await world.HistoryAsync(ClaimWorld.Slot(1)))!.State);
    }

    [Fact]
    public async Task A_claim_for_a_slot_already_recorded_answers_already_claimed_without_a_write()
    {
        await using var world = new ClaimWorld(consul);
        var a = await world.ExecutorAsync("node-a");
        var first = await a.Firing.FireAsync(world.Request(ClaimWorld.Slot(1), "true"), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(FireStatus.Ran, first.Status);

        var b = await world.ExecutorAsync("node-b");
        var before = b.Client.Requests.Snapshot();
        var again = await b.Firing.FireAsync(world.Request(ClaimWorld.Slot(1), "true"), cancellationToken: TestContext.Current.CancellationToken);
        var used = b.Client.Requests.Snapshot().Since(before);

        Assert.Equal(FireStatus.AlreadyClaimed, again.Status);
        Assert.Equal("node-a", again.Current!.Node);
        Assert.Equal(0, used.Writes);
    }

    [Fact]
    public async Task Forbid_records_a_busy_slot_skipped_once_even_with_three_claimers()
    {
        await using var world = new ClaimWorld(consul);
        var holder = await world.ExecutorAsync("holder");
        using var release = new Dtask.Executor.Processes.StopRequest();
        var running = holder.Firing.FireAsync(world.Request(ClaimWorld.Slot(1), "sleep 300 & wait"), release, TestContext.Current.CancellationToken);
        Assert.True(await Eventually.TrueAsync(() => holder.Events.Events.Contains($"started {ClaimWorld.Slot(1)}"), TimeSpan.FromSeconds(10)));

        var others = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => world.ExecutorAsync($"node-{i}")));
        var results = await Task.WhenAll(others.Select(o => o.Firing.FireAsync(world.Request(ClaimWorld.Slot(2), "true") with { Concurrency = ConcurrencyPolicy.Forbid },
            cancellationToken: TestContext.Current.CancellationToken)));

        Assert.All(results, r => Assert.Equal(FireStatus.Busy, r.Status));
        Assert.Single(results, r => r.Marked);
        var skipped = await world.HistoryAsync(ClaimWorld.Slot(2));
        Assert.Equal(RunState.Skipped, skipped!.State);
        Assert.Equal("still-running", skipped.Reason);
        var run = await world.Store.ReadRunAsync(world.Task, TestContext.Current.CancellationToken);
        Assert.Equal(ClaimWorld.Slot(1), run.Record!.Slot); // The running record is left alone.
        Assert.True(run.Record.IsRunning);

        release.Stop(Dtask.Executor.Processes.StopReason.Other("test over"));
        var ended = await running;
        Assert.Equal(RunState.Failed, ended.Record!.State);
        Assert.Equal("stopped: test over", ended.Record.Reason);
    }

    [Fact]
    public async Task Finish_writes_history_trims_it_to_the_limit_and_costs_two_writes_per_fire()
    {
        await using var world = new ClaimWorld(consul);
        var node = await world.ExecutorAsync("node-a", ttl: TimeSpan.FromSeconds(60));
        var writes = new List<long>();
        for (var i = 1; i <= 6; i++)
        {
            var before = node.Client.Requests.Snapshot();
            var result = await node.Firing.FireAsync(world.Request(ClaimWorld.Slot(i), $"echo run {i}") with { HistoryLimit = 3 },
                cancellationToken: TestContext.Current.CancellationToken);
            var used = node.Client.Requests.Snapshot().Since(before);
            writes.Add(used.Writes);
            Assert.Equal(FireStatus.Ran, result.Status);
            Assert.Equal(RunState.Succeeded, result.Record!.State);
            Assert.Equal(FinishStatus.Recorded, result.Finish!.Status);
        }

        TestContext.Current.SendDiagnosticMessage($"Consul writes per fire: {string.Join(", ", writes)}");
        TestContext.Current.TestOutputHelper?.WriteLine($"Consul writes per fire: {string.Join(", ", writes)}");
        Assert.All(writes, w => Assert.Equal(2, w));

        var slots = await world.Store.HistorySlotsAsync(world.Task, TestContext.Current.CancellationToken);
        Assert.Equal([ClaimWorld.Slot(4), ClaimWorld.Slot(5), ClaimWorld.Slot(6)], slots);
        var last = await world.HistoryAsync(ClaimWorld.Slot(6));
        Assert.Equal("run 6\n", last!.OutputTail);
        Assert.Equal(0, last.ExitCode);
        Assert.True(last.Fence > 0);
        var run = await world.Store.ReadRunAsync(world.Task, TestContext.Current.CancellationToken);
        Assert.Equal(last, run.Record);
        var lockPair = await world.Store.ReadLockAsync(world.Task, TestContext.Current.CancellationToken);
        Assert.Null(lockPair!.Session);
        Assert.Equal([$"started {ClaimWorld.Slot(6)}", $"finished {ClaimWorld.Slot(6)} Succeeded"], node.Events.Events.TakeLast(2));
    }

    [Fact]
    public async Task A_failed_attempt_is_retried_in_the_same_claim_keeping_the_fence()
    {
        await using var world = new ClaimWorld(consul);
        var node = await world.ExecutorAsync("node-a", ttl: TimeSpan.FromSeconds(60));
        var counter = Path.Combine(Path.GetTempPath(), "dtask-retry-" + Guid.NewGuid().ToString("N"));
        try
        {
            var script = $"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; echo \"attempt $n fence $DTASK_FENCE\"; [ $n -ge 3 ]";
            var before = node.Client.Requests.Snapshot();
            var result = await node.Firing.FireAsync(world.Request(ClaimWorld.Slot(1), script) with { RetryLimit = 3, RetryBackoff = TimeSpan.FromMilliseconds(100) },
                cancellationToken: TestContext.Current.CancellationToken);
            var used = node.Client.Requests.Snapshot().Since(before);

            Assert.Equal(RunState.Succeeded, result.Record!.State);
            Assert.Equal(3, result.Record.Attempt);
            Assert.Equal($"attempt 3 fence {result.Record.Fence}\n", result.Record.OutputTail);
            Assert.Equal(4, used.Writes); // claim, two attempt updates, finish
            TestContext.Current.TestOutputHelper?.WriteLine($"Consul writes for a fire with 2 retries: {used.Writes}");

            var failing = await node.Firing.FireAsync(world.Request(ClaimWorld.Slot(2), "exit 4") with { RetryLimit = 1, RetryBackoff = TimeSpan.FromMilliseconds(50) },
                cancellationToken: TestContext.Current.CancellationToken);
            Assert.Equal(RunState.Failed, failing.Record!.State);
            Assert.Equal(2, failing.Record.Attempt);
            Assert.Equal(4, failing.Record.ExitCode);
            Assert.Equal("exit-code-4", failing.Record.Reason);
        }
        finally
        {
            File.Delete(counter);
        }
    }

    [Fact]
    public async Task A_missed_slot_is_recorded_once_and_advances_the_run_record()
    {
        await using var world = new ClaimWorld(consul);
        var marker = new SlotMarker(world.Store);
        var results = await Task.WhenAll(Enumerable.Range(0, 3).Select(i =>
            marker.RecordMissedAsync(world.Task, ClaimWorld.Slot(1), $"node-{i}", "consul-unreachable", 10, TestContext.Current.CancellationToken)));

        Assert.Single(results, r => r == MarkStatus.Written);
        Assert.All(results, r => Assert.True(r is MarkStatus.Written or MarkStatus.AlreadyRecorded, r.ToString()));
        var run = await world.Store.ReadRunAsync(world.Task, TestContext.Current.CancellationToken);
        Assert.Equal(RunState.Missed, run.Record!.State);
        Assert.Equal(ClaimWorld.Slot(1), run.Record.Slot);
        Assert.Equal(RunState.Missed, (await world.HistoryAsync(ClaimWorld.Slot(1)))!.State);

        var claim = await new SlotClaimer(world.Store).ClaimAsync(world.Task, ClaimWorld.Slot(1), "late", (await world.SessionAsync()).Id,
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(ClaimStatus.AlreadyClaimed, claim.Status);
    }
}
