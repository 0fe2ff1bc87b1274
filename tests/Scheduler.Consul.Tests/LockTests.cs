using Dtask.Consul.Kv;
using Dtask.Consul.Locking;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Dtask.Consul.Tests;

public sealed class LockTests(DevAgentFixture consul)
{
    private readonly string prefix = TestKvPrefix.New();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ConsulClient Client => consul.Client;

    private LockOptions Options(string name) => new(prefix + "lock")
    {
        Value = KvValue.Utf8(name),
        SessionName = name,
        SessionTtl = TimeSpan.FromSeconds(10),
        LockDelay = TimeSpan.FromSeconds(1),
    };

    [Fact]
    public async Task The_lost_token_fires_when_another_actor_destroys_the_session()
    {
        await using var held = await ConsulLock.TryAcquireAsync(Client, Options("node-a"), cancellationToken: Ct);
        Assert.NotNull(held);
        var lost = new TaskCompletionSource();
        using var registration = held.LostToken.Register(() => lost.TrySetResult());
        await Task.Delay(200, Ct);
        Assert.False(held.IsLost);

        await Client.Sessions.DestroyAsync(held.SessionId, Ct);

        await lost.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.True(held.IsLost);
        Assert.Contains(prefix + "lock", held.LostReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_held_lock_refuses_a_second_holder_and_disposing_releases_it()
    {
        var first = await ConsulLock.TryAcquireAsync(Client, Options("node-a"), cancellationToken: Ct);
        Assert.NotNull(first);
        var sessionsBefore = (await Client.Sessions.ListAsync(cancellationToken: Ct)).Value.Count;

        var second = await ConsulLock.TryAcquireAsync(Client, Options("node-b"), cancellationToken: Ct);
        var sessionsAfterRefusal = (await Client.Sessions.ListAsync(cancellationToken: Ct)).Value.Count;
        var stored = (await Client.Kv.GetAsync(prefix + "lock", cancellationToken: Ct)).Value!;
        await first.DisposeAsync();
        var released = (await Client.Kv.GetAsync(prefix + "lock", cancellationToken: Ct)).Value!;
        var firstSession = (await Client.Sessions.InfoAsync(first.SessionId, cancellationToken: Ct)).Value;

        Assert.Null(second);
        Assert.Equal(sessionsBefore, sessionsAfterRefusal); // the refused lock destroyed its session
        Assert.Equal(first.SessionId, stored.Session);
        Assert.Equal("node-a", stored.ValueAsString());
        Assert.Equal(first.Acquired.ModifyIndex, stored.ModifyIndex);
        Assert.Null(released.Session);
        Assert.Null(firstSession);
        Assert.False(first.IsLost);
    }

    [Fact]
    public async Task AcquireAsync_waits_for_the_holder_to_let_go()
    {
        var first = await ConsulLock.TryAcquireAsync(Client, Options("node-a") with { LockDelay = TimeSpan.Zero }, cancellationToken: Ct);
        Assert.NotNull(first);

        var waiting = ConsulLock.AcquireAsync(Client, Options("node-b"), cancellationToken: Ct);
        await Task.Delay(500, Ct);
        Assert.False(waiting.IsCompleted);
        await first.DisposeAsync();
        await using var second = await waiting.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal(second.SessionId, (await Client.Kv.GetAsync(prefix + "lock", cancellationToken: Ct)).Value!.Session);
        Assert.True(second.Acquired.LockIndex >= 2);
    }

    [Fact]
    public async Task The_lock_renews_its_session_on_its_own_timer()
    {
        using var client = consul.Agent.CreateClient();
        await using var held = await ConsulLock.TryAcquireAsync(client, Options("node-a") with { RenewInterval = TimeSpan.FromMilliseconds(300) }, cancellationToken: Ct);
        Assert.NotNull(held);
        var before = client.Requests.Writes;

        await Task.Delay(1300, Ct);

        // Three or four renewals (PUT /v1/session/renew) went out, and the lock is still held.
        Assert.InRange(client.Requests.Writes - before, 3, 5);
        Assert.False(held.IsLost);
        Assert.Equal(held.SessionId, (await Client.Kv.GetAsync(prefix + "lock", cancellationToken: Ct)).Value!.Session);
    }

    [Fact]
    public async Task The_lock_is_lost_when_no_renewal_succeeds_for_the_ttl_minus_the_margin()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddYears(56));
        using var handler = new SessionRenewalTests.SeveringHandler();
        using var client = new ConsulClient(consul.Agent.ClientOptions() with { ReadRetries = 0, RequestTimeout = TimeSpan.FromSeconds(2) }, handler);
        await using var held = await ConsulLock.TryAcquireAsync(client, Options("node-a") with { SessionTtl = TimeSpan.FromSeconds(30) }, time, Ct);
        Assert.NotNull(held);

        handler.Severed = true;
        await SessionRenewalTests.AdvanceUntilAsync(time, () => held.IsLost);

        await SessionRenewalTests.FiredAsync(held.LostToken);
        Assert.Contains("no successful renewal", held.LostReason, StringComparison.Ordinal);
        Assert.True(time.GetUtcNow() - DateTimeOffset.UnixEpoch.AddYears(56) >= TimeSpan.FromSeconds(27));
        handler.Severed = false;
    }
}
