using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>Tasks that change under running executors: corrupt values, suspend and resume, an edit while a run goes on.</summary>
public sealed class TaskChangeTests(ConsulFixture consul)
{
    [Fact]
    public async Task Corrupt_values_are_logged_once_suspend_stops_writes_and_edits_apply_without_restart()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var fleet = await world.StartFleetAsync(2);
        await world.PutRawAsync(world.Layout.TaskKey("ops", "bad"), "{not json");
        var susShell = $"echo \"$DTASK_SLOT $DTASK_NODE\" >> {world.PathOf("sus")}";
        var sus = await world.PutTaskAsync("sus", new ScheduledTaskSpec { Every = "1s", Shell = susShell, History = 100 });
        var edit = await world.PutTaskAsync("edit", new ScheduledTaskSpec { Every = "2s", Shell = $"echo v1 >> {world.PathOf("edit")}; sleep 2.5", History = 100 });

        // Both tasks run although a corrupt value sits beside them.
        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("sus").Length >= 2 && world.ReadLines("edit").Length >= 1, TimeSpan.FromSeconds(10)));

        // Edit while a v1 run goes on: the change is picked up without restart, the running child finishes.
        Assert.True(await Eventually.TrueAsync(() => world.RunRecordAsync(edit).GetAwaiter().GetResult()?.State == RunState.Running, TimeSpan.FromSeconds(5)));
        var running = (await world.RunRecordAsync(edit))!;
        await world.PutTaskAsync("edit", new ScheduledTaskSpec { Every = "2s", Shell = $"echo v2 >> {world.PathOf("edit")}", History = 100 });
        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("edit").Contains("v2"), TimeSpan.FromSeconds(6)), "the edited command never ran");
        Assert.Equal(RunState.Succeeded, Assert.Single(await world.HistoryAsync(edit), r => r.Slot == running.Slot).State);

        // Suspend: no run, no record, no write; resume: only slots after the resume run. Once every executor has logged
        // the suspension, no slot after that instant may start; the absence is checked once two slots after the resume
        // have run (every executor has planned again by then).
        var suspended = new ScheduledTaskSpec { Every = "1s", Shell = susShell, History = 100, Suspend = true };
        await world.PutTaskAsync("sus", suspended);
        foreach (var executor in fleet)
        {
            Assert.True(await executor.WaitForAsync("task ops/sus suspended", TimeSpan.FromSeconds(10)), executor.Output);
        }

        var suspendedFrom = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await Task.Delay(3000, TestContext.Current.CancellationToken); // how long it stays suspended, not a wait for an outcome
        var suspendedUntil = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await world.PutTaskAsync("sus", suspended with { Suspend = false });
        Assert.True(await Eventually.TrueAsync(() => world.Witnesses("sus").Count(w => w.Slot > suspendedUntil) >= 2, TimeSpan.FromSeconds(10)), "no runs after the resume");
        var resumed = world.Witnesses("sus").Where(w => w.Slot > suspendedUntil).Select(w => w.Slot).Take(2).ToList();
        Assert.True(await Eventually.TrueAsync(() => world.HistoryAsync(sus).GetAwaiter().GetResult().Count(r => resumed.Contains(r.Slot)) == 2, TimeSpan.FromSeconds(10)));
        Assert.DoesNotContain(world.Witnesses("sus"), w => w.Slot > suspendedFrom && w.Slot < suspendedUntil);
        Assert.DoesNotContain(await world.HistoryAsync(sus), r => r.Slot > suspendedFrom && r.Slot < suspendedUntil);

        // The corrupt value was reported once per executor, although the tasks folder changed several times since.
        foreach (var executor in fleet)
        {
            Assert.Single(executor.Lines, l => l.Contains("ops/bad", StringComparison.Ordinal) && l.Contains("is ignored", StringComparison.Ordinal));
        }
    }
}
