using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>SIGSTOP of the holder past its session TTL (its watchdog stops the child meanwhile), then SIGCONT (waits for the TTL).</summary>
public sealed class PausedHolderTests(ConsulFixture consul)
{
    [Fact]
    public async Task A_paused_holder_finds_its_lock_lost_kills_its_tree_and_respects_the_fence()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var fleet = await world.StartFleetAsync(2);
        var once = world.PathOf("once");
        var pids = world.PathOf("tree.pid");
        var task = await world.PutTaskAsync("paused", new ScheduledTaskSpec
        {
            Every = "2s",
            Shell = $"if mkdir {once} 2>/dev/null; then echo $$ >> {pids}; (trap '' TERM; sleep 120) & echo $! >> {pids}; sleep 120; else echo quick; fi",
            History = 100,
        });

        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("tree.pid").Length == 2, TimeSpan.FromSeconds(10)));
        var held = await world.Store.ReadRunAsync(task, TestContext.Current.CancellationToken);
        var holding = held.Record!;
        var holder = fleet.Single(e => e.Node == holding.Node);
        holder.Signal("STOP");

        // The session expires (up to two TTLs), the other executor takes over with a newer fence.
        Assert.True(await Eventually.TrueAsync(() => world.RunRecordAsync(task).GetAwaiter().GetResult() is { } r && r.Slot > holding.Slot && r.Node != holder.Node,
            TimeSpan.FromSeconds(40)), "no other executor took over while the holder was paused");
        // Its watchdog stopped the paused holder's tree (even the grandchild that ignores SIGTERM) when the lease ran out,
        // before Consul could free the lock: nothing of it is left by the time another node runs the task.
        Assert.True(world.Pids("tree.pid").All(p => !DaemonWorld.IsAlive(p)), "the paused holder's tree was still running when another node took over");
        var taken = await world.Store.ReadRunAsync(task, TestContext.Current.CancellationToken);
        var newer = taken.Record!;
        Assert.True(taken.ModifyIndex > held.ModifyIndex); // a newer fence

        holder.Signal("CONT");
        Assert.True(await holder.WaitForAsync("Lost", TimeSpan.FromSeconds(20)), holder.Output);
        Assert.True(await Eventually.TrueAsync(() => world.Pids("tree.pid").All(p => !DaemonWorld.IsAlive(p)), TimeSpan.FromSeconds(10)), "the child's tree survived");

        // The paused holder wrote nothing over the newer run: that slot stays the other node's. (Once recovered, the holder
        // is an ordinary executor again and may run later slots.) Its own slot is recorded lost or abandoned (first writer).
        var current = (await world.RunRecordAsync(task))!;
        Assert.True(current.Slot >= newer.Slot);
        Assert.True(await Eventually.TrueAsync(() => world.HistoryAsync(task).GetAwaiter().GetResult().Any(r => r.Slot == newer.Slot), TimeSpan.FromSeconds(20)),
            "the newer run was never recorded");
        var history = await world.HistoryAsync(task);
        Assert.Equal(newer.Node, Assert.Single(history, r => r.Slot == newer.Slot).Node);
        Assert.DoesNotContain(history, r => r.Node == holder.Node && r.Slot > holding.Slot && r.Slot <= newer.Slot);
        var paused = Assert.Single(history, r => r.Slot == holding.Slot);
        Assert.Contains(paused.State, new[] { RunState.Lost, RunState.Abandoned });
        Assert.DoesNotContain(holder.Lines, l => l.Contains("Unhandled", StringComparison.Ordinal));
    }
}
