using Dtask.Consul.Http;
using Dtask.Testing;

namespace Dtask.Chaos.Tests;

public sealed class ConsulClusterTests
{
    [Fact(Timeout = 120_000)]
    public async Task A_killed_leader_is_replaced_and_rejoins_with_its_data()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = await ConsulCluster.StartAsync(3, TimeSpan.FromSeconds(60), ct);
        Assert.Equal(3, cluster.Servers.Select(s => s.Address.Port).Distinct().Count());
        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30), ct);
        using (var client = leader.CreateClient())
        {
            Assert.True((await client.Kv.PutStringAsync("kept", "before the crash", cancellationToken: ct)).Value);
        }

        await leader.KillAsync();
        Assert.False(leader.IsRunning);
        var successor = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30), ct);
        Assert.NotEqual(leader.Name, successor.Name);

        leader.Start();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30), ct);
        Assert.All(cluster.Servers, s => Assert.True(s.IsRunning));
        using var restarted = leader.CreateClient();
        var kept = (await restarted.Kv.GetAsync("kept", QueryOptions.ConsistentRead, ct)).Value;
        Assert.Equal("before the crash", kept?.ValueAsString());
    }
}
