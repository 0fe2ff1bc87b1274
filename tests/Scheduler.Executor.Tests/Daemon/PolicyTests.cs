using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>Forbid, Replace and timeout with two executors.</summary>
public sealed class PolicyTests(ConsulFixture consul)
{
    [Fact]
    public async Task Forbid_skips_Replace_stops_the_holder_and_a_timeout_kills_the_whole_tree()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        await world.StartFleetAsync(2);
        var forbid = await world.PutTaskAsync("forbid", new ScheduledTaskSpec { Every = "1s", Shell = "sleep 2.5", History = 100 });
        var replace = await world.PutTaskAsync("replace", new ScheduledTaskSpec
        {
            Every = "2s", Shell = "sleep 30", ConcurrencyPolicy = ConcurrencyPolicy.Replace, History = 100,
        });
        var timeout = await world.PutTaskAsync("timeout", new ScheduledTaskSpec
        {
            Every = "5s", Timeout = "1s", History = 100,
            Shell = $"(trap '' TERM; sleep 60) & echo $! >> {world.PathOf("grandchild.pid")}; trap '' TERM; sleep 60",
        });

        // Each policy has acted at least once: a Forbid skip, a replaced run, a timed-out run (not a fixed wait, which a
        // loaded machine can outlast).
        Assert.True(await Eventually.TrueAsync(() =>
        {
            var f = world.HistoryAsync(forbid).GetAwaiter().GetResult();
            var r = world.HistoryAsync(replace).GetAwaiter().GetResult();
            var t = world.HistoryAsync(timeout).GetAwaiter().GetResult();
            return f.Any(x => x.State == RunState.Succeeded) && f.Any(x => x.State == RunState.Skipped)
                && r.Any(x => x.Reason?.Contains("replaced", StringComparison.Ordinal) == true)
                && t.Any(x => x.State == RunState.TimedOut);
        }, TimeSpan.FromSeconds(40)), "a policy never acted");

        var forbidden = await world.HistoryAsync(forbid);
        Assert.Contains(forbidden, r => r.State == RunState.Succeeded);
        var skipped = forbidden.Where(r => r.State == RunState.Skipped).ToList();
        Assert.NotEmpty(skipped);
        Assert.All(skipped, r => Assert.Equal("still-running", r.Reason));

        var replaced = (await world.HistoryAsync(replace)).Where(r => r.State != RunState.Skipped).ToList();
        Assert.Contains(replaced, r => r.Reason?.Contains("replaced", StringComparison.Ordinal) == true);
        Assert.DoesNotContain(await world.HistoryAsync(replace), r => r.State == RunState.Skipped);
        // Between a replaced run's finish and the next claim the record briefly says failed (stopped: replaced).
        Assert.Equal(RunState.Running, await Eventually.EqualsAsync(async () => (await world.RunRecordAsync(replace))!.State, RunState.Running, TimeSpan.FromSeconds(3)));

        var timedOut = await world.HistoryAsync(timeout);
        Assert.Contains(timedOut, r => r.State == RunState.TimedOut);
        Assert.NotEmpty(world.Pids("grandchild.pid"));
        Assert.True(await Eventually.TrueAsync(() => world.Pids("grandchild.pid").All(p => !DaemonWorld.IsAlive(p)), TimeSpan.FromSeconds(5)), "a grandchild survived the timeout");
    }
}
