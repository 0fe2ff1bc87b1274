using System.Diagnostics;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Testing;

namespace Dtask.Consul.Tests;

/// <summary>Waits for a session to expire (Consul's minimum TTL is 10 s): a class of its own so it runs beside the others.</summary>
public sealed class SessionExpiryTests(DevAgentFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_session_left_to_expire_releases_its_lock_within_twice_its_ttl()
    {
        var client = consul.Client;
        var key = TestKvPrefix.New() + "lock";
        var ttl = SessionRequest.MinimumTtl;
        var session = (await client.Sessions.CreateAsync(new SessionRequest("abandoned", ttl) { LockDelay = TimeSpan.Zero }, Ct)).Value;
        Assert.True((await client.Kv.PutStringAsync(key, "held", new KvPutOptions { Acquire = session }, Ct)).Value);
        var clock = Stopwatch.StartNew();

        // Watch the key with blocking queries until its session is cleared.
        var pair = (await client.Kv.GetAsync(key, cancellationToken: Ct)).Value!;
        var index = pair.ModifyIndex;
        while (pair.Session is not null && clock.Elapsed < (ttl * 2) + TimeSpan.FromSeconds(5))
        {
            var next = await client.Kv.GetAsync(key, new Http.QueryOptions { WaitIndex = index, WaitTime = TimeSpan.FromSeconds(5) }, Ct);
            index = next.Meta.Index;
            pair = next.Value!;
        }

        Assert.Null(pair.Session);
        Assert.Equal("held", pair.ValueAsString());
        Assert.InRange(clock.Elapsed, ttl - TimeSpan.FromSeconds(1), (ttl * 2) + TimeSpan.FromSeconds(2));
        Assert.Null((await client.Sessions.InfoAsync(session, cancellationToken: Ct)).Value);
    }
}
