using Dtask.Consul.Kv;
using Dtask.Consul.Locking;
using Dtask.Consul.Sessions;
using Dtask.Consul.Tests.Fixtures;
using Dtask.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Dtask.Consul.Tests;

public sealed class SessionRenewalTests(DevAgentFixture consul)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static FakeTimeProvider NewTime() => new(DateTimeOffset.UnixEpoch.AddYears(56));

    [Fact]
    public async Task The_session_is_lost_when_a_renewal_answers_404()
    {
        var time = NewTime();
        using var client = consul.Agent.CreateClient();
        var renewed = new TaskCompletionSource();
        await using var session = await SessionRenewal.CreateAsync(client,
            new SessionRenewalOptions { Ttl = TimeSpan.FromSeconds(30), LockDelay = TimeSpan.FromSeconds(1), RenewalObserver = _ => renewed.TrySetResult() }, time, Ct);
        var info = (await client.Sessions.InfoAsync(session.Id, cancellationToken: Ct)).Value!;
        Assert.Equal(TimeSpan.FromSeconds(1), info.LockDelay);
        Assert.Equal(TimeSpan.FromSeconds(30), info.Ttl);

        time.Advance(TimeSpan.FromSeconds(10));
        await renewed.Task.WaitAsync(TimeSpan.FromSeconds(5), Ct);
        Assert.Equal(1, session.Renewals);
        Assert.False(session.IsLost);

        await client.Sessions.DestroyAsync(session.Id, Ct);
        // Fake time moves on in one-second steps (the renewal loop may not be waiting on it yet when the first step comes),
        // staying well before the renewal deadline, so only the renewal's 404 can lose the session.
        for (var i = 0; i < 16 && !session.IsLost; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(100, Ct);
        }

        await FiredAsync(session.Lost);
        Assert.Contains("404", session.LostReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_renewal_404_for_a_session_that_still_exists_does_not_lose_it()
    {
        // A leader that has not yet applied its log (a restarted server) answers a renewal 404 for a live session.
        var time = NewTime();
        using var handler = new StaleRenewalHandler { Stale = true };
        using var client = new ConsulClient(consul.Agent.ClientOptions(), handler);
        var renewed = new TaskCompletionSource();
        await using var session = await SessionRenewal.CreateAsync(client,
            new SessionRenewalOptions { Ttl = TimeSpan.FromSeconds(30), RenewalObserver = _ => renewed.TrySetResult() }, time, Ct);

        for (var i = 0; i < 16 && handler.StaleAnswers < 2; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(100, Ct);
        }

        Assert.True(handler.StaleAnswers >= 2, $"the renewal loop did not renew ({handler.StaleAnswers} answers)");
        Assert.False(session.IsLost, session.LostReason);
        handler.Stale = false;
        for (var i = 0; i < 16 && !renewed.Task.IsCompleted; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(100, Ct);
        }

        await renewed.Task.WaitAsync(TimeSpan.FromSeconds(5), Ct);
        Assert.False(session.IsLost, session.LostReason);
        Assert.NotNull((await client.Sessions.InfoAsync(session.Id, cancellationToken: Ct)).Value);
    }

    [Fact]
    public async Task The_session_is_lost_when_no_renewal_succeeds_for_the_ttl_minus_the_margin()
    {
        var time = NewTime();
        using var handler = new SeveringHandler();
        using var client = new ConsulClient(consul.Agent.ClientOptions() with { ReadRetries = 0, RequestTimeout = TimeSpan.FromSeconds(2) }, handler);
        await using var session = await SessionRenewal.CreateAsync(client, new SessionRenewalOptions { Ttl = TimeSpan.FromSeconds(30) }, time, Ct);

        handler.Severed = true;
        await AdvanceUntilAsync(time, () => session.IsLost);

        await FiredAsync(session.Lost);
        Assert.Contains("no successful renewal", session.LostReason, StringComparison.Ordinal);
        Assert.True(time.GetUtcNow() - DateTimeOffset.UnixEpoch.AddYears(56) >= TimeSpan.FromSeconds(27));
        handler.Severed = false;
    }

    [Fact]
    public async Task The_deadline_observer_sees_the_time_left_before_the_loss_at_creation_and_after_each_renewal()
    {
        var time = NewTime();
        using var client = consul.Agent.CreateClient();
        var seen = new System.Collections.Concurrent.ConcurrentQueue<TimeSpan>();
        var renewed = new TaskCompletionSource();
        await using var session = await SessionRenewal.CreateAsync(client, new SessionRenewalOptions
        {
            Ttl = TimeSpan.FromSeconds(30),
            LostMargin = TimeSpan.FromSeconds(12),
            RenewInterval = TimeSpan.FromSeconds(6),
            DeadlineObserver = left =>
            {
                seen.Enqueue(left);
                if (seen.Count == 2)
                {
                    renewed.TrySetResult();
                }
            },
        }, time, Ct);
        Assert.Equal([TimeSpan.FromSeconds(18)], seen); // TTL − margin, measured from before the creation was sent

        time.Advance(TimeSpan.FromSeconds(6));
        await renewed.Task.WaitAsync(TimeSpan.FromSeconds(5), Ct);
        Assert.Equal([TimeSpan.FromSeconds(18), TimeSpan.FromSeconds(18)], seen);

        // Without renewals the last deadline holds: the session is lost 18 s after the last renewal was sent.
        await client.Sessions.DestroyAsync(session.Id, Ct);
        // One-second steps (the renewal loop may not be waiting on fake time yet when the first comes), staying before
        // the deadline: the next renewal's 404 loses the session, and no deadline was handed out after the last renewal.
        for (var i = 0; i < 11 && !session.IsLost; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(100, Ct);
        }

        await FiredAsync(session.Lost);
        Assert.Contains("404", session.LostReason, StringComparison.Ordinal);
        Assert.Equal(2, seen.Count);
    }

    [Fact]
    public async Task An_adopted_session_is_renewed_but_not_destroyed_on_dispose()
    {
        var time = NewTime();
        using var client = consul.Agent.CreateClient();
        var id = (await client.Sessions.CreateAsync(new SessionRequest("adopted", TimeSpan.FromSeconds(30)), Ct)).Value;
        try
        {
            var renewed = new TaskCompletionSource();
            var session = SessionRenewal.Adopt(client, id, new SessionRenewalOptions { Ttl = TimeSpan.FromSeconds(30), RenewalObserver = _ => renewed.TrySetResult() }, time);
            time.Advance(TimeSpan.FromSeconds(10));
            await renewed.Task.WaitAsync(TimeSpan.FromSeconds(5), Ct);
            await session.DisposeAsync();

            Assert.NotNull((await client.Sessions.InfoAsync(id, cancellationToken: Ct)).Value);
            Assert.False(session.IsLost);
        }
        finally
        {
            await client.Sessions.DestroyAsync(id, Ct);
        }
    }

    [Fact]
    public async Task A_lock_key_watch_is_lost_when_the_key_is_released_while_the_session_lives()
    {
        var key = TestKvPrefix.New() + "lock";
        using var client = consul.Agent.CreateClient();
        await using var session = await SessionRenewal.CreateAsync(client, new SessionRenewalOptions { Ttl = TimeSpan.FromSeconds(30), LockDelay = TimeSpan.Zero }, cancellationToken: Ct);
        Assert.True((await client.Kv.PutAsync(key, KvValue.Utf8("held"), new KvPutOptions { Acquire = session.Id }, Ct)).Value);
        await using var watch = LockKeyWatch.Start(client, key, session);
        await Task.Delay(200, Ct);
        Assert.False(watch.IsLost);

        await client.Kv.PutAsync(key, KvValue.Utf8("held"), new KvPutOptions { Release = session.Id }, Ct);

        await FiredAsync(watch.Lost);
        Assert.False(watch.LostWithSession);
        Assert.False(session.IsLost);
        Assert.Equal($"session {session.Id} no longer holds lock key '{key}' (invalidated or released)", watch.LostReason);
    }

    [Fact]
    public async Task A_lock_key_watch_is_lost_with_its_session_even_while_the_key_still_shows_it()
    {
        var time = NewTime();
        var key = TestKvPrefix.New() + "lock";
        using var handler = new SeveringHandler();
        using var renewing = new ConsulClient(consul.Agent.ClientOptions() with { ReadRetries = 0, RequestTimeout = TimeSpan.FromSeconds(2) }, handler);
        using var watching = consul.Agent.CreateClient();
        await using var session = await SessionRenewal.CreateAsync(renewing, new SessionRenewalOptions { Ttl = TimeSpan.FromSeconds(30), LockDelay = TimeSpan.Zero }, time, Ct);
        Assert.True((await watching.Kv.PutAsync(key, KvValue.Utf8("held"), new KvPutOptions { Acquire = session.Id }, Ct)).Value);
        await using var watch = LockKeyWatch.Start(watching, key, session, time: time);

        handler.Severed = true;
        await AdvanceUntilAsync(time, () => watch.IsLost);

        await FiredAsync(watch.Lost);
        Assert.True(watch.LostWithSession);
        Assert.Equal(session.LostReason, watch.LostReason);
        Assert.Contains("no successful renewal", watch.LostReason, StringComparison.Ordinal);
        Assert.Equal(session.Id, (await watching.Kv.GetAsync(key, cancellationToken: Ct)).Value!.Session);
        handler.Severed = false;
    }

    [Fact]
    public async Task A_delayed_lock_key_watch_sends_nothing_for_short_work_and_sees_the_key_once_started()
    {
        var key = TestKvPrefix.New() + "lock";
        using var client = consul.Agent.CreateClient();
        using var watching = consul.Agent.CreateClient();
        await using var session = await SessionRenewal.CreateAsync(client, new SessionRenewalOptions { Ttl = TimeSpan.FromSeconds(30), LockDelay = TimeSpan.Zero }, cancellationToken: Ct);
        Assert.True((await client.Kv.PutAsync(key, KvValue.Utf8("held"), new KvPutOptions { Acquire = session.Id }, Ct)).Value);

        // Work shorter than the delay: the watch never queried the key.
        var before = watching.Requests.Snapshot();
        await using (LockKeyWatch.Start(watching, key, session, startAfter: TimeSpan.FromSeconds(2)))
        {
            await Task.Delay(200, Ct);
        }

        Assert.Equal(0, watching.Requests.Snapshot().Since(before).Requests);

        // Longer work: once the delay is over the key is watched, and its release is seen.
        await using var watch = LockKeyWatch.Start(watching, key, session, startAfter: TimeSpan.FromMilliseconds(300));
        await Task.Delay(600, Ct);
        Assert.False(watch.IsLost);
        Assert.True(watching.Requests.Snapshot().Since(before).Requests > 0);
        await client.Kv.PutAsync(key, KvValue.Utf8("held"), new KvPutOptions { Release = session.Id }, Ct);
        await FiredAsync(watch.Lost);
        Assert.False(watch.LostWithSession);
    }

    /// <summary>Waits (on the real clock, at most 5 s) for <paramref name="token"/> to fire; throws <see cref="TimeoutException"/> if it does not.</summary>
    internal static async Task FiredAsync(CancellationToken token)
    {
        var fired = new TaskCompletionSource();
        using var registration = token.Register(() => fired.TrySetResult());
        await fired.Task.WaitAsync(TimeSpan.FromSeconds(5), Ct);
    }

    /// <summary>Moves fake time on in steps of 4 s (at most 32 s), giving the background loops a moment after each.</summary>
    internal static async Task AdvanceUntilAsync(FakeTimeProvider time, Func<bool> done)
    {
        for (var i = 0; i < 8 && !done(); i++)
        {
            time.Advance(TimeSpan.FromSeconds(4));
            await Task.Delay(50, Ct);
        }
    }

    /// <summary>Forwards to the real agent; while <see cref="Stale"/>, answers each renewal with the agent's 404 for an unknown session.</summary>
    internal sealed class StaleRenewalHandler() : DelegatingHandler(new SocketsHttpHandler())
    {
        private int staleAnswers;

        public volatile bool Stale;

        public int StaleAnswers => Volatile.Read(ref staleAnswers);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (Stale && request.RequestUri!.AbsolutePath.StartsWith("/v1/session/renew/", StringComparison.Ordinal))
            {
                // Consul's answer to renewing a session its state does not (yet) hold: 404 with an empty body.
                var unknown = "/v1/session/renew/" + Guid.NewGuid();
                using var probe = new HttpRequestMessage(HttpMethod.Put, new Uri(request.RequestUri, unknown));
                var answer = await base.SendAsync(probe, cancellationToken);
                Interlocked.Increment(ref staleAnswers);
                return answer;
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }

    internal sealed class SeveringHandler() : DelegatingHandler(new SocketsHttpHandler())
    {
        public volatile bool Severed;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Severed ? throw new HttpRequestException("severed by the test") : base.SendAsync(request, cancellationToken);
    }
}
