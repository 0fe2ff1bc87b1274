using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>The Consul server restarts (with its data) while a run goes on.</summary>
public sealed class ConsulRestartTests
{
    [Fact]
    public async Task A_run_survives_a_consul_restart_and_later_slots_run_again()
    {
        await using var agent = await ConsulAgent.StartAsync(ConsulAgentOptions.SingleServer, TestContext.Current.CancellationToken);
        using var client = agent.CreateClient();
        await using var world = new DaemonWorld(agent.Address, client);
        await world.StartFleetAsync(2);
        var once = world.PathOf("once");
        var task = await world.PutTaskAsync("through", new ScheduledTaskSpec
        {
            Every = "2s",
            Shell = $"if mkdir {once} 2>/dev/null; then sleep 6; fi; echo $DTASK_SLOT >> {world.PathOf("ran")}",
            History = 100,
        });
        Assert.True(await Eventually.TrueAsync(() => Directory.Exists(once), TimeSpan.FromSeconds(10)));
        var running = (await world.RunRecordAsync(task))!;

        await agent.RestartAsync(TestContext.Current.CancellationToken);
        var restartedAt = DateTimeOffset.UtcNow;

        Assert.True(await Eventually.TrueAsync(() => world.HistoryAsync(task).GetAwaiter().GetResult()
            .Any(r => r.State == RunState.Succeeded && r.StartedAt > restartedAt.AddSeconds(1)), TimeSpan.FromSeconds(20)), "no slot ran after the restart");
        var long_ = Assert.Single(await world.HistoryAsync(task), r => r.Slot == running.Slot);
        Assert.Equal(RunState.Succeeded, long_.State);
    }
}
