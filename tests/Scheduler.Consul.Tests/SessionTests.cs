using Dtask.Consul.Errors;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Testing;

namespace Dtask.Consul.Tests;

public sealed class SessionTests(DevAgentFixture consul)
{
    private readonly string prefix = TestKvPrefix.New();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ConsulClient Client => consul.Client;

    private async Task<string> NewSessionAsync(string name, TimeSpan? lockDelay = null) =>
        (await Client.Sessions.CreateAsync(new SessionRequest(name, TimeSpan.FromSeconds(10)) { LockDelay = lockDelay ?? TimeSpan.FromSeconds(1) }, Ct)).Value;

    [Fact]
    public async Task A_session_is_ttl_only_and_can_be_read_renewed_listed_and_destroyed()
    {
        var id = (await Client.Sessions.CreateAsync(
            new SessionRequest("executor node-a", TimeSpan.FromSeconds(12)) { LockDelay = TimeSpan.FromSeconds(2), Behavior = SessionBehavior.Delete }, Ct)).Value;

        var info = (await Client.Sessions.InfoAsync(id, cancellationToken: Ct)).Value!;
        var renewed = (await Client.Sessions.RenewAsync(id, Ct)).Value;
        var listed = (await Client.Sessions.ListAsync(cancellationToken: Ct)).Value;
        await Client.Sessions.DestroyAsync(id, Ct);
        var gone = (await Client.Sessions.InfoAsync(id, cancellationToken: Ct)).Value;

        Assert.Equal("executor node-a", info.Name);
        Assert.Equal(TimeSpan.FromSeconds(12), info.Ttl);
        Assert.Equal(TimeSpan.FromSeconds(2), info.LockDelay);
        Assert.Equal(SessionBehavior.Delete, info.Behavior);
        Assert.Equal(TimeSpan.FromSeconds(12), renewed.Ttl);
        Assert.Contains(listed, s => s.Id == id);
        Assert.Null(gone);
    }

    [Fact]
    public async Task Renewing_a_destroyed_session_is_not_found()
    {
        var id = await NewSessionAsync("short");
        await Client.Sessions.DestroyAsync(id, Ct);

        var error = await Assert.ThrowsAsync<ConsulNotFoundException>(() => Client.Sessions.RenewAsync(id, Ct));

        Assert.Contains(id, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_sessions_racing_for_one_key_exactly_one_wins()
    {
        var key = prefix + "lock";
        var sessions = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => NewSessionAsync($"racer-{i}")));
        using var start = new ManualResetEventSlim();

        var attempts = sessions.Select(s => Task.Run(async () =>
        {
            start.Wait(Ct);
            return (Session: s, Won: (await Client.Kv.PutStringAsync(key, s, new KvPutOptions { Acquire = s }, Ct)).Value);
        }, Ct)).ToList();
        start.Set();
        var results = await Task.WhenAll(attempts);

        var winner = Assert.Single(results, r => r.Won);
        var stored = (await Client.Kv.GetAsync(key, cancellationToken: Ct)).Value!;
        Assert.Equal(winner.Session, stored.Session);
        Assert.Equal(winner.Session, stored.ValueAsString());
        Assert.Equal(1UL, stored.LockIndex);
        foreach (var s in sessions)
        {
            await Client.Sessions.DestroyAsync(s, Ct);
        }
    }

    [Fact]
    public async Task Release_frees_the_key_for_another_session_and_only_the_holder_can_release()
    {
        var key = prefix + "lock";
        var a = await NewSessionAsync("a");
        var b = await NewSessionAsync("b");
        Assert.True((await Client.Kv.PutStringAsync(key, "a", new KvPutOptions { Acquire = a }, Ct)).Value);

        var wrongRelease = await Client.Kv.PutStringAsync(key, "b", new KvPutOptions { Release = b }, Ct);
        var release = await Client.Kv.PutStringAsync(key, "a done", new KvPutOptions { Release = a }, Ct);
        var takeover = await Client.Kv.PutStringAsync(key, "b", new KvPutOptions { Acquire = b }, Ct);

        Assert.False(wrongRelease.Value);
        Assert.True(release.Value);
        // Releasing (unlike invalidation) does not start lock-delay.
        Assert.True(takeover.Value);
        await Client.Sessions.DestroyAsync(a, Ct);
        await Client.Sessions.DestroyAsync(b, Ct);
    }
}
