using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>Slots that came while every executor was down: Skip records them missed, RunOnce runs the newest.</summary>
public sealed class MissedSlotTests(ConsulFixture consul)
{
    [Fact]
    public async Task After_all_executors_were_down_Skip_records_missed_and_RunOnce_runs_the_newest_once()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var first = world.Start("solo");
        await first.ReadyAsync();
        var skip = await world.PutTaskAsync("skip", new ScheduledTaskSpec { Every = "10s", Shell = "true", StartingDeadline = "1s", MissedRunPolicy = MissedRunPolicy.Skip, History = 100 });
        var runOnce = await world.PutTaskAsync("runonce", new ScheduledTaskSpec { Every = "10s", Shell = "true", StartingDeadline = "1h", MissedRunPolicy = MissedRunPolicy.RunOnce, History = 100 });
        Assert.True(await Eventually.TrueAsync(() => world.RunRecordAsync(skip).GetAwaiter().GetResult()?.State == RunState.Succeeded
            && world.RunRecordAsync(runOnce).GetAwaiter().GetResult()?.State == RunState.Succeeded, TimeSpan.FromSeconds(22)));
        Assert.Equal(0, await first.StopAsync());
        var last = (await world.RunRecordAsync(skip))!.Slot;
        Assert.Equal(last, (await world.RunRecordAsync(runOnce))!.Slot);

        // Down for two slots; back 1.5 s after the second, so it is too late for a 1 s deadline, and 8.5 s before the
        // next one, so a slow start cannot turn the catch-up run into the next on-time run.
        var back = DateTimeOffset.FromUnixTimeSeconds(last + 20).AddMilliseconds(1500);
        var wait = back - DateTimeOffset.UtcNow;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, TestContext.Current.CancellationToken);
        }

        var second = world.Start("solo-again");
        await second.ReadyAsync();
        Assert.True(await Eventually.TrueAsync(() => world.HistoryAsync(runOnce).GetAwaiter().GetResult().Any(r => r.Slot > last && r.State == RunState.Succeeded)
            && world.HistoryAsync(skip).GetAwaiter().GetResult().Count(r => r.State == RunState.Missed) >= 2, TimeSpan.FromSeconds(30)));

        var skipped = await world.HistoryAsync(skip);
        Assert.Equal(RunState.Missed, Assert.Single(skipped, r => r.Slot == last + 10).State);
        Assert.Equal(RunState.Missed, Assert.Single(skipped, r => r.Slot == last + 20).State);

        // RunOnce: the newest slot due when the executor planned the task runs once (last + 20, unless the executor took
        // longer than 8.5 s to start on a loaded machine: then a later one), every slot before it is recorded missed.
        var ranOnce = await world.HistoryAsync(runOnce);
        var caughtUp = ranOnce.Where(r => r.Slot > last && r.State == RunState.Succeeded).Min(r => r.Slot);
        Assert.True(caughtUp >= last + 20, $"slot {caughtUp} ran although the executor was down then");
        for (var slot = last + 10; slot < caughtUp; slot += 10)
        {
            Assert.Equal(RunState.Missed, Assert.Single(ranOnce, r => r.Slot == slot).State);
        }

        Assert.Single(ranOnce, r => r.Slot == caughtUp);
    }
}
