using Dtask.Consul;
using Dtask.Executor.Claims;
using Dtask.Executor.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Dtask.Executor.Tests.Claims;

public sealed class ExecutorSessionTests(ConsulFixture consul)
{
    [Fact]
    public async Task The_session_is_lost_when_a_renewal_answers_404()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddYears(56));
        using var client = consul.NewClient();
        await using var session = await ExecutorSession.CreateAsync(client, new ExecutorSessionOptions { Ttl = TimeSpan.FromSeconds(30) }, time, TestContext.Current.CancellationToken);
        var info = (await client.Sessions.InfoAsync(session.Id, cancellationToken: TestContext.Current.CancellationToken)).Value!;
        Assert.Equal(TimeSpan.FromSeconds(1), info.LockDelay);
        Assert.Equal(TimeSpan.FromSeconds(30), info.Ttl);

        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(await Eventually.TrueAsync(() => session.Renewals == 1, TimeSpan.FromSeconds(5)));
        Assert.False(session.IsLost);

        await client.Sessions.DestroyAsync(session.Id, TestContext.Current.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(await Eventually.TrueAsync(() => session.IsLost, TimeSpan.FromSeconds(5)));
        Assert.Contains("404", session.LostReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_session_is_lost_when_no_renewal_succeeds_for_the_ttl_minus_the_margin()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddYears(56));
        using var handler = new SeveringHandler();
        using var client = new ConsulClient(consul.Agent.ClientOptions() with { ReadRetries = 0, RequestTimeout = TimeSpan.FromSeconds(2) }, handler);
        await using var session = await ExecutorSession.CreateAsync(client, new ExecutorSessionOptions { Ttl = TimeSpan.FromSeconds(30) }, time, TestContext.Current.CancellationToken);

        handler.Severed = true;
        for (var i = 0; i < 8 && !session.IsLost; i++)
        {
            time.Advance(TimeSpan.FromSeconds(4));
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.True(await Eventually.TrueAsync(() => session.IsLost, TimeSpan.FromSeconds(5)));
        Assert.Contains("no successful renewal", session.LostReason, StringComparison.Ordinal);
        Assert.True(time.GetUtcNow() - DateTimeOffset.UnixEpoch.AddYears(56) >= TimeSpan.FromSeconds(27));
        handler.Severed = false;
    }

    private sealed class SeveringHandler() : DelegatingHandler(new SocketsHttpHandler())
    {
        public volatile bool Severed;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Severed ? throw new HttpRequestException("severed by the test") : base.SendAsync(request, cancellationToken);
    }
}
