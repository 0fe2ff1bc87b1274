using Dtask.Chaos.Hosts;
using Dtask.Consul.Errors;
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

        // Autopilot counts the restarted server once it has been stable a while: then the cluster can lose one again.
        Assert.True(await cluster.WaitForFailureToleranceAsync(TimeSpan.FromSeconds(60), ct), "autopilot never said the cluster could lose a server");
    }

    [Fact(Timeout = 180_000)]
    public async Task A_leader_cut_off_from_the_majority_commits_nothing_while_the_majority_elects_and_writes_and_it_catches_up_when_healed()
    {
        var ct = TestContext.Current.CancellationToken;
        var tools = ChaosTools.Find();
        using var network = ServerNetwork.Create(tools, 3);
        await using var cluster = await ConsulCluster.StartAsync(3, network.Placement, TimeSpan.FromSeconds(60), ct);
        Assert.Equal(3, cluster.Servers.Select(s => s.Host).Distinct().Count());

        // Each server runs in a network namespace of its own, none of them this process's.
        var spaces = cluster.Servers.Select(s => File.ResolveLinkTarget($"/proc/{s.ProcessId}/ns/net", returnFinalTarget: false)?.ToString()).ToList();
        Assert.Equal(3, spaces.Distinct().Count());
        Assert.DoesNotContain(File.ResolveLinkTarget("/proc/self/ns/net", returnFinalTarget: false)?.ToString(), spaces);

        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30), ct);
        var majority = cluster.Servers.Where(s => s != leader).ToList();
        using var partition = new ServerPartition(tools, network);

        partition.Cut(leader.Host, [.. majority.Select(s => s.Host)]);

        // The majority elects one of its own and commits.
        var successor = await Eventually(async () =>
        {
            foreach (var server in majority)
            {
                using var client = server.CreateClient();
                var said = (await client.Status.LeaderAsync(ct)).Value;
                if (majority.FirstOrDefault(s => s.RaftAddress == said) is { } elected && (await client.Kv.PutStringAsync("during", "majority", cancellationToken: ct)).Value)
                {
                    return elected;
                }
            }

            return null;
        }, TimeSpan.FromSeconds(30));
        Assert.NotEqual(leader.Name, successor.Name);

        // The cut-off server commits nothing: its write fails (no leader it can reach), and nothing it was asked shows on the majority.
        using (var cutOff = leader.CreateClient(TimeSpan.FromSeconds(15)))
        {
            await Assert.ThrowsAnyAsync<ConsulException>(() => cutOff.Kv.PutStringAsync("lost", "minority", cancellationToken: ct));
        }

        using (var client = successor.CreateClient())
        {
            Assert.Null((await client.Kv.GetAsync("lost", QueryOptions.ConsistentRead, ct)).Value);
        }

        partition.Heal();
        await Eventually(async () =>
        {
            using var healed = leader.CreateClient();
            return (await healed.Kv.GetAsync("during", QueryOptions.ConsistentRead, ct)).Value?.ValueAsString() == "majority" ? "caught up" : null;
        }, TimeSpan.FromSeconds(60));
    }

    private static async Task<T> Eventually<T>(Func<Task<T?>> probe, TimeSpan within)
        where T : class
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Exception? last = null;
        while (watch.Elapsed < within)
        {
            try
            {
                if (await probe() is { } found)
                {
                    return found;
                }
            }
            catch (ConsulException e)
            {
                last = e;
            }

            await Task.Delay(250, TestContext.Current.CancellationToken);
        }

        throw new TimeoutException($"not within {within.TotalSeconds} s", last);
    }
}
