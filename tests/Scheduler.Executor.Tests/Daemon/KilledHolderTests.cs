using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>SIGKILL of the executor holding a long run (waits for its session TTL).</summary>
public sealed class KilledHolderTests(ConsulFixture consul)
{
    [Fact]
    public async Task A_killed_holders_run_becomes_abandoned_and_later_slots_run_on_the_survivors()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var fleet = await world.StartFleetAsync(3);
        var once = world.PathOf("once");
        var task = await world.PutTaskAsync("long", new ScheduledTaskSpec
        {
            Every = "2s",
            Shell = $"if mkdir {once} 2>/dev/null; then echo $$ >> {world.PathOf("child.pid")}; sleep 60; else echo quick; fi",
            History = 100,
        });

        Assert.True(await Eventually.TrueAsync(() => File.Exists(world.PathOf("child.pid")), TimeSpan.FromSeconds(10)));
        var holding = await world.RunRecordAsync(task);
        Assert.NotNull(holding);
        Assert.Equal(RunState.Running, holding.State);
        var holder = fleet.Single(e => e.Node == holding.Node);
        holder.Signal("KILL");
        var killedAt = DateTimeOffset.UtcNow;

        // Consul ends the session within two TTLs; the next claimer marks the run abandoned and runs later slots.
        RunRecord? abandoned = null;
        Assert.True(await Eventually.TrueAsync(() =>
        {
            var history = world.HistoryAsync(task).GetAwaiter().GetResult();
            abandoned = history.FirstOrDefault(r => r.Slot == holding.Slot && r.State == RunState.Abandoned);
            return abandoned is not null && history.Any(r => r.Slot > holding.Slot && r.State == RunState.Succeeded);
        }, TimeSpan.FromSeconds(40)), "the run was not marked abandoned, or no later slot ran");

        var records = await world.HistoryAsync(task);
        var ranLater = records.Where(r => r.Slot > holding.Slot && r.State is RunState.Succeeded or RunState.Failed).ToList();
        Assert.NotEmpty(ranLater);
        Assert.All(ranLater, r => Assert.NotEqual(holder.Node, r.Node));
        // Nobody ran the task while the dead holder's lock was held: every later run started after it was abandoned.
        Assert.All(ranLater, r => Assert.True(r.StartedAt >= abandoned!.FinishedAt, $"slot {r.Slot} started at {r.StartedAt:O}, before the lock was free"));
        Assert.All(records.Where(r => r.Slot > holding.Slot && r.StartedAt < abandoned!.FinishedAt), r => Assert.Equal(RunState.Skipped, r.State));
        TestContext.Current.TestOutputHelper?.WriteLine($"abandoned {(abandoned!.FinishedAt - killedAt)?.TotalSeconds:0.0} s after SIGKILL; {ranLater.Count} later runs");
    }
}
