using System.Diagnostics;
using Dtask.Consul.Kv;
using Dtask.Consul.Sessions;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Testing;

namespace Dtask.Consul.Tests;

/// <summary>Waits for a lock-delay to pass: a class of its own so it runs beside the others.</summary>
public sealed class LockDelayTests(DevAgentFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task After_the_holders_session_is_destroyed_lock_delay_blocks_a_new_acquire_until_it_passes()
    {
        var client = consul.Client;
        var key = TestKvPrefix.New() + "lock";
        var lockDelay = TimeSpan.FromSeconds(2);
        var holder = (await client.Sessions.CreateAsync(new SessionRequest("holder", TimeSpan.FromSeconds(10)) { LockDelay = lockDelay }, Ct)).Value;
        var next = (await client.Sessions.CreateAsync(new SessionRequest("next", TimeSpan.FromSeconds(10)) { LockDelay = lockDelay }, Ct)).Value;
        Assert.True((await client.Kv.PutStringAsync(key, "holder", new KvPutOptions { Acquire = holder }, Ct)).Value);

        await client.Sessions.DestroyAsync(holder, Ct);
        var clock = Stopwatch.StartNew();
        var immediately = await client.Kv.PutStringAsync(key, "next", new KvPutOptions { Acquire = next }, Ct);
        var freeButDelayed = (await client.Kv.GetAsync(key, cancellationToken: Ct)).Value!;
        var acquired = false;
        while (!acquired && clock.Elapsed < lockDelay * 3)
        {
            await Task.Delay(100, Ct);
            acquired = (await client.Kv.PutStringAsync(key, "next", new KvPutOptions { Acquire = next }, Ct)).Value;
        }

        Assert.False(immediately.Value);
        Assert.Null(freeButDelayed.Session);
        Assert.True(acquired, "the lock was never acquired after lock-delay");
        Assert.InRange(clock.Elapsed, lockDelay - TimeSpan.FromMilliseconds(500), lockDelay * 3);
        await client.Sessions.DestroyAsync(next, Ct);
    }
}
