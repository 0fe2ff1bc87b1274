using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>A task suspended and resumed while no executor was up: the one that starts afterwards leaves the suspension's slots alone.</summary>
public sealed class ResumeTests(ConsulFixture consul)
{
    [Fact]
    public async Task An_executor_started_after_a_resume_neither_runs_nor_records_the_slots_of_the_suspension()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        var first = world.Start("before");
        await first.ReadyAsync();
        var spec = new ScheduledTaskSpec { Every = "2s", Shell = "true", History = 100 };
        var task = await world.PutTaskAsync("resumed", spec);
        Assert.True(await Eventually.TrueAsync(() => world.RunRecordAsync(task).GetAwaiter().GetResult()?.State == RunState.Succeeded, TimeSpan.FromSeconds(10)));
        Assert.Equal(0, await first.StopAsync());
        var last = (await world.RunRecordAsync(task))!.Slot;

        // Suspended and resumed (as `dtask resume` or the operator write it) while no executor runs.
        var running = await StoredAsync(world);
        var suspended = (running with { Spec = spec with { Suspend = true } }).Over(running, DateTimeOffset.UtcNow);
        await world.PutRawAsync(world.Layout.TaskKey("ops", "resumed"), suspended.ToJson());
        await Task.Delay(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        var resumed = (suspended with { Spec = spec }).Over(suspended, DateTimeOffset.UtcNow);
        await world.PutRawAsync(world.Layout.TaskKey("ops", "resumed"), resumed.ToJson());
        var resumedAt = resumed.ResumedAt!.Value.ToUnixTimeSeconds();

        var second = world.Start("after");
        await second.ReadyAsync();
        var readyAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.True(await Eventually.TrueAsync(() => world.HistoryAsync(task).GetAwaiter().GetResult().Any(r => r.Slot > resumedAt && r.State == RunState.Succeeded),
            TimeSpan.FromSeconds(10)), second.Output);

        var history = await world.HistoryAsync(task);
        Assert.DoesNotContain(history, r => r.Slot > last && r.Slot <= resumedAt); // neither run nor recorded missed
        // A slot after the resume that came before the executor was ready (a slow start) was truly missed: no executor
        // ran; any other missed record would be false.
        Assert.DoesNotContain(history, r => r.State == RunState.Missed && !(r.Slot > resumedAt && r.Slot <= readyAt));
    }

    private static async Task<KvTaskSpec> StoredAsync(DaemonWorld world)
    {
        var pair = (await world.Client.Kv.GetAsync(world.Layout.TaskKey("ops", "resumed"), cancellationToken: TestContext.Current.CancellationToken)).Value!;
        return KvTaskSpec.Parse(pair.ValueAsString());
    }
}
