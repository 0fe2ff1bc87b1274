using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Dtask.Cli;
using Dtask.Cli.Ui;
using Dtask.Consul;
using Dtask.Consul.Kv;
using Dtask.Consul.Txn;
using Dtask.Core.Manifests;
using Dtask.Core.Model;
using Dtask.Core.State;

namespace Dtask.Ui.Tests;

/// <summary>A real Consul agent for the in-process server tests; each test uses its own prefix.</summary>
public sealed class ConsulFixture : IAsyncLifetime
{
    public ConsulAgent Agent { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Agent = await ConsulAgent.StartAsync(cancellationToken: TestContext.Current.CancellationToken);

    public async ValueTask DisposeAsync() => await Agent.DisposeAsync();
}

/// <summary><c>dtask ui</c>'s server in process against a real Consul agent: scale, live events, the bearer token, and its option checks.</summary>
public sealed class UiServerTests(ConsulFixture consul) : IClassFixture<ConsulFixture>
{
    private static readonly IPEndPoint AnyPort = new(IPAddress.Loopback, 0);

    private static string Envelope(string ns, string name, string schedule) => KvTaskSpec.From(new ScheduledTask
    {
        Metadata = new ObjectMeta { Name = name, Namespace = ns },
        Spec = new ScheduledTaskSpec { Schedule = schedule, Command = ["true"] },
    }, TaskOwner.Cli).ToJson();

    private static async Task<JsonElement> GetJsonAsync(HttpClient http, Uri uri)
    {
        using var response = await http.GetAsync(uri, TestContext.Current.CancellationToken);
        response.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.Clone();
    }

    [Fact]
    public async Task Ten_thousand_tasks_are_served_a_page_at_a_time_well_within_a_second()
    {
        var layout = new KvLayout(TestKvPrefix.New());
        using var client = consul.Agent.CreateClient();
        const int Count = 10_000;
        var ops = Enumerable.Range(0, Count).Select(i => TxnOp.Set(layout.TaskKey($"ns-{i % 20:00}", $"task-{i:00000}"),
            KvValue.Utf8(Envelope($"ns-{i % 20:00}", $"task-{i:00000}", $"{i % 60} * * * *")))).ToList();
        await Parallel.ForEachAsync(ops.Chunk(64), new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = TestContext.Current.CancellationToken },
            async (chunk, ct) => Assert.True((await client.Txn.ExecuteAsync(chunk, TxnAtomicity.RequireAtomic, ct)).Value.Committed));

        await using var server = await UiServer.StartAsync(new UiOptions(AnyPort, consul.Agent.ClientOptions(), layout, false, null), TestContext.Current.CancellationToken);
        using var http = new HttpClient();
        Assert.True(await Eventually(async () => (await GetJsonAsync(http, new Uri(server.Address!, "/api/tasks?limit=1"))).GetProperty("total").GetInt32() == Count,
            TimeSpan.FromSeconds(30)), "the 10,000 tasks never showed");

        var slowest = TimeSpan.Zero;
        foreach (var query in new[] { "offset=0&limit=50", "offset=9950&limit=50", "ns=ns-07&offset=100&limit=50", "q=task-0999&limit=50" })
        {
            var clock = Stopwatch.StartNew();
            var page = await GetJsonAsync(http, new Uri(server.Address!, "/api/tasks?" + query));
            slowest = clock.Elapsed > slowest ? clock.Elapsed : slowest;
            Assert.InRange(page.GetProperty("items").GetArrayLength(), 1, 50);
        }

        Assert.True(slowest < TimeSpan.FromMilliseconds(500), $"a page of 50 out of 10,000 took {slowest.TotalMilliseconds:0} ms");
        var filtered = await GetJsonAsync(http, new Uri(server.Address!, "/api/tasks?q=task-0999&limit=50"));
        Assert.Equal(10, filtered.GetProperty("total").GetInt32()); // task-09990 to task-09999
        Assert.Equal(20, filtered.GetProperty("namespaces").GetArrayLength());
    }

    [Fact]
    public async Task A_change_in_Consul_reaches_an_open_event_stream_within_a_second()
    {
        var layout = new KvLayout(TestKvPrefix.New());
        using var client = consul.Agent.CreateClient();
        await client.Kv.PutStringAsync(layout.TaskKey("live", "one"), Envelope("live", "one", "0 3 * * *"), cancellationToken: TestContext.Current.CancellationToken);
        await using var server = await UiServer.StartAsync(new UiOptions(AnyPort, consul.Agent.ClientOptions(), layout, false, null), TestContext.Current.CancellationToken);
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        using var streams = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // Three tabs; every one hears each change.
        var readers = new List<StreamReader>();
        for (var i = 0; i < 3; i++)
        {
            var response = await http.GetAsync(new Uri(server.Address!, "/api/events"), HttpCompletionOption.ResponseHeadersRead, streams.Token);
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            readers.Add(new StreamReader(await response.Content.ReadAsStreamAsync(streams.Token)));
        }

        Assert.True(await Eventually(() => Task.FromResult(server.Watch.Current.Tasks.Count == 1), TimeSpan.FromSeconds(10)));
        foreach (var reader in readers)
        {
            await NextChangeAsync(reader, streams.Token); // The state when the tab connected.
        }

        var clock = Stopwatch.StartNew();
        using (var output = new StringWriter())
        using (var error = new StringWriter())
        {
            Assert.Equal(0, Program.Run(["suspend", "live/one", "--consul", $"{consul.Agent.Address.Host}:{consul.Agent.Address.Port}", "--prefix", layout.Prefix], output, error));
        }

        // The snapshot that shows the task suspended, then every tab hears it (a change still queued from the first load
        // may come before it).
        Assert.True(await Eventually(() => Task.FromResult(server.Watch.Current.Tasks.Single().Observation.Envelope!.Spec.IsSuspended), TimeSpan.FromSeconds(5)));
        var suspended = server.Watch.Current.Version;
        foreach (var reader in readers)
        {
            while (await NextChangeAsync(reader, streams.Token) < suspended)
            {
            }
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"the change reached the tabs after {clock.Elapsed.TotalMilliseconds:0} ms");
        foreach (var reader in readers)
        {
            reader.Dispose();
        }
    }

    /// <summary>The version of the next change event.</summary>
    private static async Task<long> NextChangeAsync(StreamReader reader, CancellationToken cancellationToken)
    {
        var change = false;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line == "event: change")
            {
                change = true;
            }
            else if (change && line.StartsWith("data: ", StringComparison.Ordinal))
            {
                return long.Parse(line["data: ".Length..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        Assert.Fail("the event stream ended");
        return 0;
    }

    [Fact]
    public async Task With_a_bearer_token_every_request_needs_it_and_the_login_form_sets_a_cookie()
    {
        var layout = new KvLayout(TestKvPrefix.New());
        const string Token = "a-long-enough-bearer-token-0123456789";
        await using var server = await UiServer.StartAsync(new UiOptions(AnyPort, consul.Agent.ClientOptions(), layout, false, Token), TestContext.Current.CancellationToken);
        using var handler = new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() };
        using var http = new HttpClient(handler);
        using (var refused = await http.GetAsync(new Uri(server.Address!, "/api/tasks"), TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        using (var page = await http.GetAsync(server.Address!, TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
            Assert.Equal("/login", page.Headers.Location?.OriginalString);
        }

        using (var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server.Address!, "/api/tasks")))
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);
            using var allowed = await http.SendAsync(request, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }

        using (var wrong = new HttpRequestMessage(HttpMethod.Post, new Uri(server.Address!, "/login")) { Content = new FormUrlEncodedContent([new("token", "wrong")]) })
        {
            wrong.Headers.Add("Origin", server.Address!.GetLeftPart(UriPartial.Authority));
            using var answer = await http.SendAsync(wrong, TestContext.Current.CancellationToken);
            Assert.Equal("/login?wrong=1", answer.Headers.Location?.OriginalString);
        }

        using (var login = new HttpRequestMessage(HttpMethod.Post, new Uri(server.Address!, "/login")) { Content = new FormUrlEncodedContent([new("token", Token)]) })
        {
            login.Headers.Add("Origin", server.Address!.GetLeftPart(UriPartial.Authority));
            using var answer = await http.SendAsync(login, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.Redirect, answer.StatusCode);
        }

        using var withCookie = await http.GetAsync(new Uri(server.Address!, "/api/tasks"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, withCookie.StatusCode);
    }

    [Theory]
    [InlineData("nonsense", "--listen 'nonsense' is not HOST:PORT")]
    [InlineData("example.com:8080", "the host 'example.com' is not an IP address")]
    [InlineData("127.0.0.1:70000", "is not HOST:PORT")]
    public void A_bad_listen_address_is_a_usage_error_naming_the_option(string listen, string expected)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        Assert.Equal(2, Program.Run(["ui", "--listen", listen], output, error));
        Assert.Contains(expected, error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_short_bearer_token_is_refused()
    {
        using var directory = new TempDirectory();
        var file = directory.Write("token", "short");
        using var output = new StringWriter();
        using var error = new StringWriter();
        Assert.Equal(2, Program.Run(["ui", "--bearer-token-file", file], output, error));
        Assert.Contains("the token must be at least 16 characters", error.ToString(), StringComparison.Ordinal);
    }

    private static async Task<bool> Eventually(Func<Task<bool>> condition, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < within)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        return false;
    }
}
