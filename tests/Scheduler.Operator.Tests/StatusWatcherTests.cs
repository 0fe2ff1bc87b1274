using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Operator.Reconciliation;
using Dtask.Operator.Status;
using Dtask.Operator.Tests.Support;

namespace Dtask.Operator.Tests;

public sealed class StatusWatcherTests(ConsulFixture consul)
{
    private readonly KvLayout layout = ConsulFixture.NewLayout();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Spec_and_run_record_changes_name_the_task_and_the_rebuilt_status_follows_them()
    {
        var reconciler = new TaskReconciler(consul.Client, layout);
        await reconciler.ApplyOneAsync(Core.Manifests.TaskOwner.Cli, Manifest.Task("ops", "backup"), Ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(TimeSpan.FromSeconds(20));
        await using var batches = new StatusWatcher(consul.Client, layout).WatchAsync(stop.Token).GetAsyncEnumerator(stop.Token);

        Assert.True(await batches.MoveNextAsync());
        Assert.Equal([new TaskId("ops", "backup")], batches.Current);

        var run = new RunRecord { Slot = 1_773_144_000, RunId = "r1", Node = "node-a", State = RunState.Succeeded, ExitCode = 0, FinishedAt = DateTimeOffset.FromUnixTimeSeconds(1_773_144_003) };
        await consul.Client.Kv.PutStringAsync(layout.RunKey("ops", "backup"), StateJson.Serialize(run), cancellationToken: Ct);
        Assert.True(await batches.MoveNextAsync());
        Assert.Equal([new TaskId("ops", "backup")], batches.Current);

        var observation = await new TaskObservationReader(consul.Client, layout).ReadAsync("ops", "backup", Ct);
        var status = observation.StatusAt(DateTimeOffset.FromUnixTimeSeconds(1_773_144_030));
        Assert.Equal(("succeeded", "node-a"), (status.LastRun!.Result, status.LastRun.Node));

        await reconciler.DeleteOneAsync(Core.Manifests.TaskOwner.Cli, "ops", "backup", cancellationToken: Ct);
        Assert.True(await batches.MoveNextAsync());
        Assert.Equal([new TaskId("ops", "backup")], batches.Current);
    }
}
