using System.Diagnostics;
using Dtask.Consul.Kv;
using Dtask.Consul.Locking;
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

    [Fact]
    public async Task A_replica_waiting_for_a_lock_takes_it_once_the_lock_delay_of_a_lost_holder_has_passed()
    {
        var key = TestKvPrefix.New() + "lock";
        LockOptions Options(string value) => new(key)
        {
            Value = KvValue.Utf8(value),
            SessionTtl = TimeSpan.FromSeconds(10),
            LockDelay = TimeSpan.FromSeconds(2),
            MonitorWaitTime = TimeSpan.FromSeconds(60),
        };
        var holder = await ConsulLock.AcquireAsync(consul.Client, Options("holder"), cancellationToken: Ct);
        await using (holder)
        {
            using var replica = consul.Agent.CreateClient();
            var waiting = ConsulLock.AcquireAsync(replica, Options("next"), cancellationToken: Ct);

            // Wait until the replica's first acquire was refused: it sends its first read (the watch of the key) only
            // after that answer. An acquire in flight while the session is destroyed is checked for lock-delay before
            // the destroy is applied, and may take the key at once.
            var tried = Stopwatch.StartNew();
            while (replica.Requests.Requests - replica.Requests.Writes < 1 && tried.Elapsed < TimeSpan.FromSeconds(20))
            {
                await Task.Delay(20, Ct);
            }

            Assert.True(replica.Requests.Requests - replica.Requests.Writes >= 1, "the replica never tried to acquire");

            // The holder's session dies (as when its TTL runs out): the key is freed, and stays untakeable for the
            // lock-delay; no later change of the key announces its end.
            var clock = Stopwatch.StartNew();
            await consul.Client.Sessions.DestroyAsync(holder.SessionId, Ct);
            await using var next = await waiting.WaitAsync(TimeSpan.FromSeconds(20), Ct);

            Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(20));
            Assert.Equal("next", (await consul.Client.Kv.GetAsync(key, cancellationToken: Ct)).Value!.ValueAsString());
        }
    }
}
