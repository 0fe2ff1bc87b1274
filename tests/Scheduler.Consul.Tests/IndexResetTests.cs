using System.Diagnostics;
using Dtask.Consul.Blocking;
using Dtask.Consul.Http;
using Dtask.Consul.Kv;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Testing;

namespace Dtask.Consul.Tests;

/// <summary>
/// A watcher whose agent is replaced by a freshly built one (all state gone, indexes start over) must reset its
/// index instead of blocking forever on an index the new cluster has not reached.
/// </summary>
public sealed class IndexResetTests(DevAgentFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_watcher_resets_when_the_cluster_is_rebuilt_and_its_index_goes_backwards()
    {
        var key = TestKvPrefix.New() + "spec";
        for (var i = 0; i < 30; i++)
        {
            await consul.Client.Kv.PutStringAsync(key, $"old-{i}", cancellationToken: Ct);
        }
        await using var rebuilt = await ConsulAgent.StartAsync(cancellationToken: Ct);
        using var rebuiltClient = rebuilt.CreateClient();
        await rebuiltClient.Kv.PutStringAsync(key, "new", cancellationToken: Ct);

        var current = consul.Client;
        var watch = new BlockingQuery<KvPair?>((q, ct) => current.Kv.GetAsync(key, q, ct),
            new BlockingQueryOptions { WaitTime = TimeSpan.FromSeconds(1), MinInterval = TimeSpan.FromMilliseconds(50) });
        var before = await watch.NextAsync(Ct);
        current = rebuiltClient;
        var clock = Stopwatch.StartNew();

        var after = await watch.NextAsync(Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal("old-29", before.Value!.ValueAsString());
        Assert.Equal("new", after.Value!.ValueAsString());
        Assert.True(after.Meta.Index < before.Meta.Index, $"{after.Meta.Index} < {before.Meta.Index}");
        Assert.Equal(after.Meta.Index, watch.Index);
        Assert.Equal(1, watch.Resets);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));

        // And it blocks on the new index from then on: a write wakes it.
        var next = watch.NextAsync(Ct);
        await rebuiltClient.Kv.PutStringAsync(key, "newer", cancellationToken: Ct);
        Assert.Equal("newer", (await next.WaitAsync(TimeSpan.FromSeconds(10), Ct)).Value!.ValueAsString());
    }
}
