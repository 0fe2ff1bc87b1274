using System.Net;
using Dtask.Consul;
using Dtask.Consul.Configuration;
using Dtask.Consul.Http;

namespace Dtask.Consul.Tests;

public sealed class RequestLimitTests
{
    /// <summary>Answers every request after a gate opens, counting how many are in flight at once.</summary>
    private sealed class GatedHandler : HttpMessageHandler
    {
        private readonly TaskCompletionSource open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int inFlight;
        private int highest;

        public int Highest => Volatile.Read(ref highest);

        public int InFlight => Volatile.Read(ref inFlight);

        public void Open() => open.TrySetResult();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var now = Interlocked.Increment(ref inFlight);
            int seen;
            while (now > (seen = Volatile.Read(ref highest)) && Interlocked.CompareExchange(ref highest, now, seen) != seen)
            {
            }

            var blocking = request.RequestUri!.Query.Contains("index=", StringComparison.Ordinal);
            if (!blocking)
            {
                await open.Task.WaitAsync(cancellationToken);
            }

            Interlocked.Decrement(ref inFlight);
            var response = new HttpResponseMessage(HttpStatusCode.NotFound) { Content = new ByteArrayContent([]) };
            response.Headers.Add("X-Consul-Index", "7");
            return response;
        }
    }

    [Fact]
    public async Task A_bounded_client_has_at_most_its_limit_of_requests_in_flight_and_blocking_queries_do_not_count()
    {
        var ct = TestContext.Current.CancellationToken;
        using var handler = new GatedHandler();
        using var client = new ConsulClient(new ConsulClientOptions { MaxConcurrentRequests = 3 }, handler);
        var reads = Enumerable.Range(0, 50).Select(i => client.Kv.GetAsync("k/" + i, cancellationToken: ct)).ToList();
        while (handler.InFlight < 3)
        {
            await Task.Delay(10, ct);
        }

        await Task.Delay(100, ct);
        Assert.Equal(3, handler.InFlight);

        // A blocking query passes the queue while the bound is used up.
        var blocking = await client.Kv.GetAsync("watched", new QueryOptions { WaitIndex = 5, WaitTime = TimeSpan.FromSeconds(1) }, ct);
        Assert.Null(blocking.Value);

        handler.Open();
        await Task.WhenAll(reads);
        Assert.Equal(4, handler.Highest);
    }
}
