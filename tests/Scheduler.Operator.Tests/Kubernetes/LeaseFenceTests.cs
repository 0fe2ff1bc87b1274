using Dtask.Consul;
using Dtask.Core.Manifests;
using Dtask.Core.State;
using Dtask.Operator.Reconciliation;
using Dtask.Operator.Sources.Kubernetes;
using Dtask.Operator.Tests.Support;
using Dtask.Testing.Kubernetes;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using Microsoft.Extensions.Time.Testing;

namespace Dtask.Operator.Tests.Kubernetes;

/// <summary>
/// The Kubernetes leader stops writing to Consul before its Lease can be taken over: the clock is a
/// <see cref="FakeTimeProvider"/>, Consul is the real agent.
/// </summary>
public sealed class LeaseFenceTests(ConsulFixture consul) : IDisposable
{
    private static readonly TimeSpan LeaseDuration = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(3);
    private readonly KvLayout layout = ConsulFixture.NewLayout();
    private readonly ConsulClient client = consul.NewClient();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => client.Dispose();

    private async Task<KvTaskSpec?> StoredAsync(string ns, string name)
    {
        var pair = (await consul.Client.Kv.GetAsync(layout.TaskKey(ns, name), cancellationToken: Ct)).Value;
        return pair is null ? null : KvTaskSpec.Parse(pair.ValueAsString());
    }

    [Fact]
    public async Task A_leader_whose_last_renewal_is_older_than_the_lease_duration_less_the_margin_refuses_to_write()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        var fence = new LeaseFence(client, time, LeaseDuration, WriteTimeout);
        var reconciler = new TaskReconciler(client, layout, time: time, fence: fence);

        // The margin: the write timeout plus the clock-rate allowance; writes stop 11.25 s after a renewal.
        Assert.Equal(TimeSpan.FromSeconds(3.75), fence.Margin);

        // Never renewed: nothing is written.
        await Assert.ThrowsAsync<LeadershipLostException>(() => reconciler.ApplyOneAsync(TaskOwner.Kubernetes, Manifest.Task("jobs", "backup", generation: 1), Ct));
        Assert.Null(await StoredAsync("jobs", "backup"));

        fence.Renewed(time.GetTimestamp());
        time.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(TaskAction.Created, (await reconciler.ApplyOneAsync(TaskOwner.Kubernetes, Manifest.Task("jobs", "backup", generation: 1), Ct)).Action);

        // No renewal for 11.5 s: the Lease can be taken over in 3.5 s, less than a write may take.
        time.Advance(TimeSpan.FromSeconds(0.5));
        var refused = await Assert.ThrowsAsync<LeadershipLostException>(() =>
            reconciler.ApplyOneAsync(TaskOwner.Kubernetes, Manifest.Task("jobs", "backup", "7m", generation: 2), Ct));
        Assert.Contains("11.5 s ago", refused.Reason, StringComparison.Ordinal);
        await Assert.ThrowsAsync<LeadershipLostException>(() => reconciler.DeleteOneAsync(TaskOwner.Kubernetes, "jobs", "backup", cancellationToken: Ct));
        var kept = await StoredAsync("jobs", "backup");
        Assert.Equal(("1m", 1L), (kept!.Spec.Every, kept.Generation));

        // The same write, right after a renewal, goes through: only the fence stopped it.
        fence.Renewed(time.GetTimestamp());
        Assert.Equal(TaskAction.Configured, (await reconciler.ApplyOneAsync(TaskOwner.Kubernetes, Manifest.Task("jobs", "backup", "7m", generation: 2), Ct)).Action);
        Assert.Equal("7m", (await StoredAsync("jobs", "backup"))!.Spec.Every);
    }

    [Fact]
    public async Task Each_successful_renewal_of_the_Lease_by_this_replica_reopens_the_write_window()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        var fence = new LeaseFence(client, time, LeaseDuration, WriteTimeout);
        await using var server = KubernetesApiServer.Start();
        using var kubernetes = server.CreateClient();
        var lease = fence.Recording(new LeaseLock(kubernetes, "dtask-system", "dtask-operator", "operator-a"));
        Assert.Equal(TimeSpan.Zero, fence.Remaining);

        var now = time.GetUtcNow().UtcDateTime;
        Assert.True(await lease.CreateAsync(new LeaderElectionRecord { HolderIdentity = "operator-a", LeaseDurationSeconds = 15, AcquireTime = now, RenewTime = now }, Ct));
        Assert.Equal(LeaseDuration - fence.Margin, fence.Remaining);

        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(TimeSpan.FromSeconds(1.25), fence.Remaining);
        var record = await lease.GetAsync(Ct);
        record.RenewTime = time.GetUtcNow().UtcDateTime;
        Assert.True(await lease.UpdateAsync(record, Ct));
        Assert.Equal(LeaseDuration - fence.Margin, fence.Remaining);

        // Writing another holder into the Lease (handing it back) is no renewal of this replica's.
        time.Advance(TimeSpan.FromSeconds(10));
        record = await lease.GetAsync(Ct);
        record.HolderIdentity = "";
        Assert.True(await lease.UpdateAsync(record, Ct));
        Assert.Equal(TimeSpan.FromSeconds(1.25), fence.Remaining);
    }
}
