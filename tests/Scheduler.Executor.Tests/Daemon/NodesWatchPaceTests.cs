using System.Diagnostics;
using System.Globalization;
using System.Text;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;
using Dtask.Core.State;
using Dtask.Executor.Daemon;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Daemon;

/// <summary>
/// The <c>nodes/</c> watch of a large fleet: every executor refreshes its registration's stamp, and each write wakes every
/// watcher; paced, an executor asks at most once per pace however often the registrations change.
/// </summary>
public sealed class NodesWatchPaceTests(ConsulFixture consul)
{
    private const int Peers = 100;

    [Fact]
    public async Task An_executor_among_a_hundred_registrations_restamped_fifty_times_a_second_watches_them_at_most_twice_a_second()
    {
        await using var proxy = new ConsulProxy(consul.Agent.Address);
        var counting = 0;
        var watches = 0;
        proxy.Decide = (method, path, _) =>
        {
            if (Volatile.Read(ref counting) == 1 && method == "GET" && path.EndsWith("/nodes/", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref watches);
            }

            return ProxyFault.Forward;
        };
        await using var world = new DaemonWorld(proxy.Address, consul.NewClient());
        var ct = TestContext.Current.CancellationToken;
        var session = (await world.Client.Sessions.CreateAsync(new SessionRequest("a fleet of registrations", TimeSpan.FromSeconds(60))
        {
            Behavior = SessionBehavior.Delete,
            LockDelay = TimeSpan.Zero,
        }, ct)).Value;
        var started = DateTimeOffset.UtcNow;
        async Task StampAsync(int peer)
        {
            var node = string.Create(CultureInfo.InvariantCulture, $"peer-{peer:000}");
            var record = new NodeRecord { Node = node, Version = "test", StartedAt = started, Session = session, Clock = DateTimeOffset.UtcNow, State = NodeRecord.Ready };
            Assert.True((await world.Client.Kv.PutAsync(world.Layout.NodeKey(node), Encoding.UTF8.GetBytes(StateJson.Serialize(record)),
                new KvPutOptions { Acquire = session }, ct)).Value);
        }

        try
        {
            for (var peer = 0; peer < Peers; peer++)
            {
                await StampAsync(peer);
            }

            var executor = world.Start("watcher");
            await executor.ReadyAsync();
            Assert.Matches(@"\b10[01] live nodes", executor.Output);

            // 4 s of stamps, one every 20 ms: unpaced, each one wakes the watch (about 200 requests, fewer on a busy machine).
            Volatile.Write(ref counting, 1);
            var clock = Stopwatch.StartNew();
            var writes = 0;
            while (clock.Elapsed < TimeSpan.FromSeconds(4))
            {
                await StampAsync(writes++ % Peers);
                await Task.Delay(20, ct);
            }

            Volatile.Write(ref counting, 0);
            var asked = Volatile.Read(ref watches);
            TestContext.Current.TestOutputHelper?.WriteLine($"{writes} stamps written in {clock.Elapsed.TotalSeconds:0.0} s; the executor asked {asked} times");
            Assert.True(writes >= 40, $"only {writes} stamps were written: the machine is too slow for the measure");
            // 101 registered nodes: a pace of 500 ms, 8 requests in 4 s (and the one pending when the stamps began).
            Assert.Equal(TimeSpan.FromMilliseconds(500), KvWatchService.NodesWatchPace(Peers + 1));
            Assert.InRange(asked, 1, 12);
        }
        finally
        {
            await world.Client.Sessions.DestroyAsync(session, CancellationToken.None);
        }
    }

    [Theory]
    [InlineData(1, 50)]
    [InlineData(3, 50)]
    [InlineData(30, 150)]
    [InlineData(100, 500)]
    [InlineData(100_000, 500)]
    public void The_pace_is_5_ms_per_node_from_50_to_500_ms_so_the_stamps_it_delays_are_still_timed(int nodes, int milliseconds)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), KvWatchService.NodesWatchPace(nodes));
        Assert.True(KvWatchService.NodesWatchPace(nodes) < ClockSkewGuard.MaxWatchGap);
    }
}
