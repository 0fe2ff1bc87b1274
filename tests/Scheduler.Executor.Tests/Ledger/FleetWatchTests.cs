using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Daemon;
using Dtask.Executor.Tests.Support;
using Dtask.Testing.Ledger;

namespace Dtask.Executor.Tests.Ledger;

/// <summary>
/// The executor's watch of the fleet (<see cref="KvWatchService"/>) as orchestration over the ledger alone: task specs,
/// node registrations and control requests written to an in-memory ledger reach the executor's view, and garbage in one
/// key leaves the rest running.
/// </summary>
public sealed class FleetWatchTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(10);
    private readonly InMemoryTaskLedger ledger = new();
    private readonly ClusterView view = new();
    private readonly CapturingSink log = new();

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private KvWatchService Watch() =>
        new(ledger, ledger.Layout, view, new ClockSkewGuard(TimeSpan.FromSeconds(2), TimeProvider.System, log.CreateLogger()), TimeProvider.System, log.CreateLogger());

    private void PutSpec(string name, string every) =>
        ledger.PutSpec(new TaskId("ops", name), KvTaskSpec.From(new ScheduledTask
        {
            Metadata = new ObjectMeta { Name = name, Namespace = "ops" },
            Spec = new ScheduledTaskSpec { Every = every, Shell = "true" },
        }, TaskOwner.Cli).ToJson());

    [Fact]
    public async Task The_first_state_is_in_the_view_when_the_watch_has_started_and_a_new_registration_and_trigger_reach_it_after()
    {
        PutSpec("backup", "1m");
        var session = ledger.OpenSession();
        Assert.True((await ledger.RegisterNodeAsync(new NodeRecord { Node = "node-a", Version = "1", StartedAt = DateTimeOffset.UtcNow, Session = session.Id }, session.Id, Cancel)).Registered);
        var watch = Watch();

        await watch.StartAsync(Cancel);
        try
        {
            Assert.Equal(["backup"], view.Tasks.Keys.Select(t => t.Name));
            Assert.Equal(["node-a"], view.Nodes.Select(n => n.Node));

            var other = ledger.OpenSession();
            await ledger.RegisterNodeAsync(new NodeRecord { Node = "node-b", Version = "1", StartedAt = DateTimeOffset.UtcNow, Session = other.Id }, other.Id, Cancel);
            ledger.AddTrigger(new TaskId("ops", "backup"), "t-1");
            PutSpec("report", "5m");

            Assert.True(await Eventually.TrueAsync(() => view.Nodes.Count == 2 && view.Tasks.Count == 2 && view.Controls.Values.Any(c => c.Id == "t-1"), Within),
                $"nodes {view.Nodes.Count}, tasks {view.Tasks.Count}, controls {view.Controls.Count}");

            ledger.EndSession(other);
            Assert.True(await Eventually.TrueAsync(() => view.Nodes.Count == 1, Within), "the ended node's registration went away");
        }
        finally
        {
            await watch.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_garbage_spec_is_logged_once_and_the_other_tasks_keep_their_place_in_the_view()
    {
        PutSpec("good", "1m");
        var watch = Watch();
        await watch.StartAsync(Cancel);
        try
        {
            ledger.PutSpec(new TaskId("ops", "garbage"), "{\"schedule\": [");
            PutSpec("later", "1m");
            Assert.True(await Eventually.TrueAsync(() => view.Tasks.Count == 2, Within), $"tasks {string.Join(',', view.Tasks.Keys)}");
            PutSpec("last", "1m");
            Assert.True(await Eventually.TrueAsync(() => view.Tasks.Count == 3, Within));

            Assert.Equal(["good", "last", "later"], view.Tasks.Keys.Select(t => t.Name).Order(StringComparer.Ordinal));
            Assert.Single(log.Events, e => e.RenderMessage().Contains(ledger.Layout.TaskKey("ops", "garbage"), StringComparison.Ordinal));
        }
        finally
        {
            await watch.StopAsync(CancellationToken.None);
        }
    }
}
