using Dtask.Consul;
using Dtask.Consul.Kv;
using Dtask.Consul.Locking;
using Dtask.Core.Manifests;
using Dtask.Core.State;
using Dtask.Operator.Reconciliation;
using Dtask.Operator.Sources.Directory;
using Dtask.Operator.Tests.Support;

namespace Dtask.Operator.Tests;

/// <summary>
/// A directory leader whose lock session is gone (destroyed here, as Consul does when a paused leader outlives its
/// TTL) still believes it leads: its writes must be refused by Consul itself, atomically.
/// </summary>
public sealed class LeadershipFenceTests(ConsulFixture consul) : IDisposable
{
    private readonly KvLayout layout = ConsulFixture.NewLayout();
    private readonly TempDirectory folder = new();
    private readonly ConsulClient client = consul.NewClient();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        client.Dispose();
        folder.Dispose();
    }

    private string LockKey => DirectorySourceOptions.DefaultLockKey(layout);

    private Task<ConsulLock> TakeLockAsync() => ConsulLock.AcquireAsync(client, new LockOptions(LockKey)
    {
        Value = KvValue.Utf8("test leader"),
        SessionTtl = TimeSpan.FromSeconds(10),
        LockDelay = TimeSpan.Zero,
    }, cancellationToken: Ct);

    private async Task<KvTaskSpec?> StoredAsync(string ns, string name)
    {
        var pair = (await consul.Client.Kv.GetAsync(layout.TaskKey(ns, name), cancellationToken: Ct)).Value;
        return pair is null ? null : KvTaskSpec.Parse(pair.ValueAsString());
    }

    private async Task<IReadOnlyList<(string Key, ulong Index)>> TasksAsync() =>
        [.. (await consul.Client.Kv.ListAsync(layout.TasksPrefix, cancellationToken: Ct)).Value.Select(p => (p.Key, p.ModifyIndex)).OrderBy(p => p.Key, StringComparer.Ordinal)];

    [Fact]
    public async Task A_reconciler_whose_lock_session_was_destroyed_writes_nothing_and_says_it_lost_leadership()
    {
        var owner = TaskOwner.Directory(folder.Path);
        var fence = new ConsulLockFence(client, LockKey);
        var reconciler = new TaskReconciler(client, layout, fence: fence);
        await using var held = await TakeLockAsync();
        fence.Hold(held.SessionId);
        var first = await reconciler.ReconcileAsync(owner, [Manifest.Document("ops", "backup"), Manifest.Document("ops", "report")], cancellationToken: Ct);
        Assert.Equal(2, first.Count(TaskAction.Created));
        var before = await TasksAsync();

        await consul.Client.Sessions.DestroyAsync(held.SessionId, Ct);

        // Its stale view: backup edited, report pruned, a new task created.
        var refused = await Assert.ThrowsAsync<LeadershipLostException>(() => reconciler.ReconcileAsync(owner,
            [Manifest.Document("ops", "backup", "7m"), Manifest.Document("ops", "fresh")], cancellationToken: Ct));
        Assert.Contains(held.SessionId, refused.Reason, StringComparison.Ordinal);
        Assert.Equal(before, await TasksAsync());
        Assert.Equal("1m", (await StoredAsync("ops", "backup"))!.Spec.Every);

        // A single-task delete goes through the same fence.
        await Assert.ThrowsAsync<LeadershipLostException>(() => reconciler.DeleteOneAsync(owner, "ops", "report", cancellationToken: Ct));
        Assert.Equal(before, await TasksAsync());
    }

    [Fact]
    public async Task Every_transaction_of_a_reconcile_split_in_several_carries_the_check_and_none_commits_after_the_session_is_gone()
    {
        var owner = TaskOwner.Directory(folder.Path);
        var fence = new ConsulLockFence(client, LockKey);
        var reconciler = new TaskReconciler(client, layout, fence: fence);
        await using var held = await TakeLockAsync();
        fence.Hold(held.SessionId);
        var tasks = Enumerable.Range(0, 100).Select(i => Manifest.Document("bulk", $"t{i:000}")).ToList();

        var created = await reconciler.ReconcileAsync(owner, tasks, cancellationToken: Ct);

        // 100 writes and one check per transaction: 63 + 37.
        Assert.Equal(100, created.Count(TaskAction.Created));
        Assert.Equal(2, created.Writes);
        var before = await TasksAsync();

        await consul.Client.Sessions.DestroyAsync(held.SessionId, Ct);
        var edited = Enumerable.Range(0, 100).Select(i => Manifest.Document("bulk", $"t{i:000}", "3m")).ToList();
        await Assert.ThrowsAsync<LeadershipLostException>(() => reconciler.ReconcileAsync(owner, edited, cancellationToken: Ct));

        Assert.Equal(before, await TasksAsync());

        // Not holding the lock at all: refused before anything is sent.
        fence.Release();
        var requests = client.Requests.Snapshot();
        await Assert.ThrowsAsync<LeadershipLostException>(() => reconciler.ReconcileAsync(owner, edited, cancellationToken: Ct));
        Assert.Equal(0, client.Requests.Snapshot().Since(requests).Writes);
    }

    [Fact]
    public async Task A_deposed_directory_leader_that_wakes_with_a_stale_view_cannot_roll_back_or_prune_what_the_new_leader_wrote()
    {
        // The first leader: it reconciled {keep every 1m, old} and then stalled past its lock's TTL.
        var owner = TaskOwner.Directory(folder.Path);
        var staleFence = new ConsulLockFence(client, LockKey);
        var stale = new TaskReconciler(client, layout, fence: staleFence);
        var staleLock = await TakeLockAsync();
        await using (staleLock)
        {
            staleFence.Hold(staleLock.SessionId);
            IReadOnlyList<ManifestDocument> staleView = [Manifest.Document("ops", "keep"), Manifest.Document("ops", "old")];
            Assert.Equal(2, (await stale.ReconcileAsync(owner, staleView, cancellationToken: Ct)).Count(TaskAction.Created));
            await consul.Client.Sessions.DestroyAsync(staleLock.SessionId, Ct);

            // The second replica takes the lock and reconciles the directory as it is now.
            folder.Write("keep.yaml", Manifest.Yaml("ops", "keep", every: "5m"));
            folder.Write("new.yaml", Manifest.Yaml("ops", "new"));
            using var secondClient = consul.NewClient();
            var second = new DirectoryOperator(secondClient, layout, new DirectorySourceOptions(folder.Path)
            {
                LockDelay = TimeSpan.Zero,
                SessionTtl = TimeSpan.FromSeconds(10),
                Resync = TimeSpan.FromMinutes(10),
                LogStatus = false,
            }, loggers: TestOutputLog.Factory());
            await second.StartAsync(Ct);
            try
            {
                await Eventually.TrueAsync(() => second.IsLeader && second.Reconciliations > 0, "the second replica's first reconcile");
                Assert.Equal("5m", (await StoredAsync("ops", "keep"))!.Spec.Every);
                Assert.NotNull(await StoredAsync("ops", "new"));
                Assert.Null(await StoredAsync("ops", "old"));
                var theirs = await TasksAsync();

                // The first wakes up, still holding its session id, and reconciles its stale view: it would roll
                // keep back to 1m, create old again and prune new.
                await Assert.ThrowsAsync<LeadershipLostException>(() => stale.ReconcileAsync(owner, staleView, cancellationToken: Ct));

                Assert.Equal(theirs, await TasksAsync());
                Assert.Equal("5m", (await StoredAsync("ops", "keep"))!.Spec.Every);
                Assert.True(second.IsLeader);
            }
            finally
            {
                await second.StopAsync(CancellationToken.None);
                second.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_directory_operator_whose_write_is_refused_reports_lost_leadership_and_campaigns_again()
    {
        folder.Write("backup.yaml", Manifest.Yaml("ops", "backup"));
        await using var proxy = HoldingConsulProxy.Start(consul.Agent.Address);
        using var proxied = new ConsulClient(consul.Agent.ClientOptions() with { Address = proxy.Address });
        var service = new DirectoryOperator(proxied, layout, new DirectorySourceOptions(folder.Path)
        {
            LockDelay = TimeSpan.Zero,
            SessionTtl = TimeSpan.FromSeconds(10),
            Resync = TimeSpan.FromMinutes(10),
            Debounce = TimeSpan.FromMilliseconds(50),
            RetryDelay = TimeSpan.FromMilliseconds(200),
            LogStatus = false,
        }, loggers: TestOutputLog.Factory());
        // The replica does not hear about its lock (the watch's answers and the renewals are held, as for a process
        // that stalled), and its session is destroyed, as Consul does once the TTL has run out.
        proxy.Hold = (method, path) => path.Contains("/v1/session/renew/", StringComparison.Ordinal)
            || (method == "GET" && path.StartsWith("/v1/kv/" + LockKey, StringComparison.Ordinal) && path.Contains("index=", StringComparison.Ordinal));
        await service.StartAsync(Ct);
        try
        {
            await Eventually.TrueAsync(() => service.Reconciliations > 0, "the first reconcile");
            await Eventually.TrueAsync(() => proxy.Held.Any(h => h.StartsWith("GET /v1/kv/" + LockKey, StringComparison.Ordinal)), "the lock watch to be held");
            var session = (await consul.Client.Kv.GetAsync(LockKey, cancellationToken: Ct)).Value!.Session!;
            await consul.Client.Sessions.DestroyAsync(session, Ct);
            Assert.True(service.IsLeader);

            folder.Write("backup.yaml", Manifest.Yaml("ops", "backup", every: "9m"));

            await Eventually.TrueAsync(() => service.LeadershipLosses == 1, "the refused write to be reported as lost leadership");
            await Eventually.TrueAsync(() => service.IsLeader && service.Reconciliations > 1, "the replica to take the lock again and reconcile");
            await Eventually.ReturnsAsync(() => StoredAsync("ops", "backup"), s => s?.Spec.Every == "9m", "the edit, written in the new term");
        }
        finally
        {
            proxy.Hold = null;
            proxy.Release(_ => true);
            await service.StopAsync(CancellationToken.None);
            service.Dispose();
        }
    }
}
