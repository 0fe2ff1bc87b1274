using System.Diagnostics;
using Dtask.Consul;
using Dtask.Core.Manifests;
using Dtask.Core.State;
using Dtask.Operator.Reconciliation;
using Dtask.Operator.Sources.Directory;
using Dtask.Operator.Tests.Support;

namespace Dtask.Operator.Tests;

public sealed class DirectoryOperatorTests(ConsulFixture consul) : IDisposable
{
    private readonly KvLayout layout = ConsulFixture.NewLayout();
    private readonly TempDirectory folder = new();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => folder.Dispose();

    private DirectorySourceOptions Options => new(folder.Path)
    {
        Debounce = TimeSpan.FromMilliseconds(100),
        Resync = TimeSpan.FromMinutes(10),
        LockDelay = TimeSpan.Zero,
        RetryDelay = TimeSpan.FromSeconds(3),
        SessionTtl = TimeSpan.FromSeconds(10),
    };

    private async Task<KvTaskSpec?> StoredAsync(string ns, string name)
    {
        var pair = (await consul.Client.Kv.GetAsync(layout.TaskKey(ns, name), cancellationToken: Ct)).Value;
        return pair is null ? null : KvTaskSpec.Parse(pair.ValueAsString());
    }

    private Task<KvTaskSpec?> EventuallyStoredAsync(string ns, string name, Func<KvTaskSpec?, bool> done, string what) =>
        Eventually.ReturnsAsync(() => StoredAsync(ns, name), done, what);

    [Fact]
    public async Task Files_added_edited_replaced_made_invalid_and_deleted_reach_Consul()
    {
        folder.Write("backup.yaml", Manifest.Yaml("ops", "backup"));
        using var client = consul.NewClient();
        var service = new DirectoryOperator(client, layout, Options);
        await service.StartAsync(Ct);
        try
        {
            var owner = TaskOwner.Directory(folder.Path);
            var first = await EventuallyStoredAsync("ops", "backup", s => s is not null, "the first reconcile");
            Assert.Equal(owner, first!.Owner);

            // Edited in place.
            folder.Write("backup.yaml", Manifest.Yaml("ops", "backup", every: "2m"));
            await EventuallyStoredAsync("ops", "backup", s => s?.Spec.Every == "2m" && s.Generation == 2, "the edit");

            // Made invalid: Consul keeps the last valid spec, and the task is not pruned.
            folder.Write("backup.yaml", Manifest.InvalidYaml("ops", "backup"));
            await Eventually.TrueAsync(() => service.LastResult?.Outcomes.Any(o => o.Action == TaskAction.Invalid) == true, "the invalid reconcile");
            Assert.Equal(("2m", 2L), ((await StoredAsync("ops", "backup"))!.Spec.Every, (await StoredAsync("ops", "backup"))!.Generation));

            // Valid again, written the way editors save: a new file renamed over the old one.
            var temporary = folder.Write(".backup.yaml.swp", Manifest.Yaml("ops", "backup", every: "3m"));
            File.Move(temporary, Path.Combine(folder.Path, "backup.yaml"), overwrite: true);
            await EventuallyStoredAsync("ops", "backup", s => s?.Spec.Every == "3m" && s.Generation == 3, "the replaced file");

            // A new subdirectory with a file, then the subdirectory removed.
            folder.Write("reports/daily.yaml", Manifest.Yaml("ops", "daily"));
            await EventuallyStoredAsync("ops", "daily", s => s is not null, "the file in a new subdirectory");
            Directory.Delete(Path.Combine(folder.Path, "reports"), recursive: true);
            await EventuallyStoredAsync("ops", "daily", s => s is null, "the removed subdirectory");

            // Deleted.
            File.Delete(Path.Combine(folder.Path, "backup.yaml"));
            await EventuallyStoredAsync("ops", "backup", s => s is null, "the deleted file");
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            service.Dispose();
        }
    }

    [Fact]
    public async Task Only_the_lock_holder_reconciles_and_another_replica_takes_over_when_its_lock_dies()
    {
        folder.Write("backup.yaml", Manifest.Yaml("ops", "backup"));
        using var clientA = consul.NewClient();
        using var clientB = consul.NewClient();
        var a = new DirectoryOperator(clientA, layout, Options);
        var b = new DirectoryOperator(clientB, layout, Options);
        await a.StartAsync(Ct);
        await b.StartAsync(Ct);
        try
        {
            await Eventually.TrueAsync(() => a.IsLeader || b.IsLeader, "a leader");
            await EventuallyStoredAsync("ops", "backup", s => s is not null, "the leader's first reconcile");
            var (leader, follower) = a.IsLeader ? (a, b) : (b, a);

            folder.Write("report.yaml", Manifest.Yaml("ops", "report"));
            await EventuallyStoredAsync("ops", "report", s => s is not null, "the leader's reconcile of a new file");
            Assert.False(follower.IsLeader);
            Assert.Equal(0, follower.Reconciliations);
            // A reconcile is counted once it has finished, a moment after its writes show in Consul.
            await Eventually.TrueAsync(() => leader.Reconciliations >= 2, "the leader's second reconcile to be counted");

            // Kill the leader's lock: destroy the session that holds it.
            var lockKey = DirectorySourceOptions.DefaultLockKey(layout);
            var session = (await consul.Client.Kv.GetAsync(lockKey, cancellationToken: Ct)).Value!.Session!;
            await consul.Client.Sessions.DestroyAsync(session, Ct);

            await Eventually.TrueAsync(() => follower.IsLeader, "the follower to take over");
            await Eventually.TrueAsync(() => follower.Reconciliations > 0, "the new leader's reconcile");
            Assert.False(leader.IsLeader);
            var leaderCount = leader.Reconciliations;

            File.Delete(Path.Combine(folder.Path, "report.yaml"));
            await EventuallyStoredAsync("ops", "report", s => s is null, "the new leader's reconcile of a deleted file");
            Assert.Equal(leaderCount, leader.Reconciliations);
        }
        finally
        {
            await Task.WhenAll(a.StopAsync(CancellationToken.None), b.StopAsync(CancellationToken.None));
            a.Dispose();
            b.Dispose();
        }
    }

    [Fact]
    public async Task A_thousand_manifests_reconcile_once_and_the_next_resync_writes_nothing()
    {
        const int Count = 1000;
        for (var file = 0; file < Count / 50; file++)
        {
            folder.Write($"batch-{file:00}.yaml", string.Join("\n---\n",
                Enumerable.Range(0, 50).Select(i => Manifest.Yaml($"team-{file % 5}", $"task-{file:00}-{i:00}", every: $"{1 + i % 7}m"))));
        }

        using var client = consul.NewClient();
        var source = new DirectorySource(Options, new TaskReconciler(client, layout));

        var before = client.Requests.Snapshot();
        var clock = Stopwatch.StartNew();
        var first = await source.ReconcileAsync("benchmark: first", Ct);
        var firstTime = clock.Elapsed;
        var firstSpent = client.Requests.Snapshot().Since(before);

        before = client.Requests.Snapshot();
        clock.Restart();
        var resync = await source.ReconcileAsync("benchmark: resync", Ct);
        var resyncTime = clock.Elapsed;
        var resyncSpent = client.Requests.Snapshot().Since(before);

        Assert.Equal(Count, first!.Count(TaskAction.Created));
        Assert.Equal(16, firstSpent.Writes);
        Assert.Equal(Count, resync!.Count(TaskAction.Unchanged));
        Assert.Equal(0, resyncSpent.Writes);
        Assert.Equal(1, resyncSpent.Requests);

        var figures = $"""
            reconcile of {Count} manifests ({Count / 50} files) into Consul
              first:  {firstTime.TotalMilliseconds:0} ms, {firstSpent.Requests} requests, {firstSpent.Writes} writes
              resync: {resyncTime.TotalMilliseconds:0} ms, {resyncSpent.Requests} requests, {resyncSpent.Writes} writes
            """;
        TestContext.Current.TestOutputHelper?.WriteLine(figures);
        Console.WriteLine(figures);
        await File.WriteAllTextAsync(Path.Combine(AppContext.BaseDirectory, "reconcile-1000-manifests.txt"), figures + "\n", Ct);
    }

    [Fact]
    public async Task A_missing_directory_reconciles_nothing_and_deletes_nothing()
    {
        using var client = consul.NewClient();
        var options = Options;
        var reconciler = new TaskReconciler(client, layout);
        await reconciler.ReconcileAsync(TaskOwner.Directory(options.FullPath), [Manifest.Document("ops", "backup")], cancellationToken: Ct);
        folder.Dispose();

        var result = await new DirectorySource(options, reconciler).ReconcileAsync("test", Ct);

        Assert.Null(result);
        Assert.NotNull(await StoredAsync("ops", "backup"));
    }
}
