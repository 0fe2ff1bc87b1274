using System.Text;
using Dtask.Consul.Kv;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>Manual triggers through <c>control/</c>.</summary>
public sealed class ControlTests(ConsulFixture consul)
{
    [Fact]
    public async Task A_manual_trigger_runs_exactly_once_across_three_executors()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var fleet = await world.StartFleetAsync(3);
        var ran = world.PathOf("ran");
        var task = await world.PutTaskAsync("manual", new ScheduledTaskSpec { Schedule = "0 0 1 1 *", Shell = $"echo \"$DTASK_SLOT $DTASK_NODE\" >> {ran}" });
        await DaemonWorld.ScheduledOnAllAsync(fleet, "manual");

        var now = DateTimeOffset.UtcNow;
        var request = new ControlRequest { Action = ControlAction.Trigger, Id = Guid.NewGuid().ToString("N"), RequestedAt = now, RequestedBy = "cli", Slot = now.ToUnixTimeSeconds() };
        var key = world.Layout.ControlKey("ops", "manual");
        Assert.True((await world.Client.Kv.PutAsync(key, Encoding.UTF8.GetBytes(StateJson.Serialize(request)), new KvPutOptions { Cas = 0 }, TestContext.Current.CancellationToken)).Value);

        Assert.True(await Eventually.TrueAsync(() => world.ReadLines("ran").Length > 0
            && world.Client.Kv.GetAsync(key).GetAwaiter().GetResult().Value is null, TimeSpan.FromSeconds(10)), "the trigger did not run, or its request stayed");
        // The slot's history entry exists (a claim checks that it does not) and the request is gone (no executor takes it
        // up any more): no other run of it can start.
        Assert.True(await Eventually.TrueAsync(() => world.HistoryAsync(task).GetAwaiter().GetResult().Any(r => r.Slot == request.Slot), TimeSpan.FromSeconds(10)));
        var line = Assert.Single(world.ReadLines("ran"));
        Assert.StartsWith(request.Slot.Value.ToString(System.Globalization.CultureInfo.InvariantCulture), line, StringComparison.Ordinal);
        var record = Assert.Single(await world.HistoryAsync(task));
        Assert.Equal(RunState.Succeeded, record.State);
        Assert.Equal(request.Slot, record.Slot);
    }
}
