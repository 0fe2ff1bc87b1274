using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Dtask.Executor.Notifications;
using Dtask.Executor.Notifications.DataDog;
using Dtask.Executor.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Dtask.Executor.Tests.Notifications;

public class DataDogTests
{
    private static readonly string[] Constant = ["env:prod", "service:dtask", "version:1.2.3"];

    [Theory]
    [InlineData("team:infra", "team:infra")]
    [InlineData("team:a|b,c#d", "team:a_b_c_d")]
    [InlineData("note:two words\nline", "note:two_words_line")]
    [InlineData("  padded  ", "padded")]
    public void Tags_cannot_break_the_datagram(string tag, string expected) =>
        Assert.Equal(expected, DogStatsDFormat.SanitizeTag(tag));

    [Theory]
    [InlineData(MetricKind.Count, 1.0, "m:1|c|#a:b")]
    [InlineData(MetricKind.Gauge, 0.5, "m:0.5|g|#a:b")]
    [InlineData(MetricKind.Distribution, 1234.5678, "m:1234.568|d|#a:b")]
    [InlineData(MetricKind.Timing, 12.0, "m:12|ms|#a:b")]
    public void Datagrams_are_name_value_type_tags(MetricKind kind, double value, string expected) =>
        Assert.Equal(expected, DogStatsDFormat.Format(new MetricPoint("m", value, kind, ["a:b"], "h")));

    [Fact]
    public async Task DogStatsD_datagrams_reach_a_udp_listener_exactly()
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;
        var notify = new TaskNotification(null, ["team:a|b", "tier:gold"]);
        var run = Runs.Backup(notify: notify);
        var tags = "env:prod,service:dtask,version:1.2.3,team:a_b,tier:gold,task:backup,namespace:ops,node:node-a";

        await using (var notifier = new DataDogNotifier(new DogStatsDSink("127.0.0.1", port, new CapturingSink().CreateLogger(), TimeProvider.System), Constant))
        {
            notifier.RunStarted(run);
            notifier.RunFinished(run, new RunOutcome(RunResult.TimedOut, TimeSpan.FromMilliseconds(61_000.25), null, ""));
            notifier.SlotMissed(new MissedSlot("ops", "backup", "node-b", 1, "deadline passed", notify));
            notifier.LockLost(run, "session invalidated");
        }

        var received = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var datagram = await udp.ReceiveAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
            received.Add(Encoding.UTF8.GetString(datagram.Buffer));
        }

        Assert.Equal(
        [
            $"dtask.fire.delay:1234|d|#{tags}",
            $"dtask.run.duration:61000.25|d|#{tags}",
            $"dtask.run.count:1|c|#{tags},result:timed_out",
            $"dtask.slot.missed:1|c|#{tags.Replace("node:node-a", "node:node-b", StringComparison.Ordinal)}",
            $"dtask.lock.lost:1|c|#{tags}",
        ],
            received);
    }

    [Fact]
    public async Task The_series_api_gets_the_exact_payload_with_the_key_in_a_header()
    {
        await using var server = new LoopbackHttpServer((n, _) => Task.FromResult(new LoopbackResponse(n == 1 ? 503 : 202)));
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(1_735_732_805));
        var options = new DataDogOptions(
            DataDogMode.SeriesApi, "127.0.0.1", 8125, new SecretText("dd-key-123"), server.BaseUri, Constant,
            HttpOutboxOptions.Default with { InitialBackoff = TimeSpan.Zero });
        using var client = new HttpClient();

        await using (var notifier = new DataDogNotifier(new SeriesApiSink(options, client, new CapturingSink().CreateLogger(), time), Constant))
        {
            notifier.RunFinished(Runs.Backup(), new RunOutcome(RunResult.Succeeded, TimeSpan.FromMilliseconds(1500), 0, ""));
            await server.WaitForRequestsAsync(2);
        }

        var request = server.Requests[1];
        Assert.Equal("POST", request.Method);
        Assert.Equal("/api/v1/series", request.PathAndQuery);
        Assert.Equal("dd-key-123", request.Headers["DD-API-KEY"]);
        Assert.Equal(server.Requests[0].Body, request.Body);
        var tags = "\"env:prod\",\"service:dtask\",\"version:1.2.3\",\"task:backup\",\"namespace:ops\",\"node:node-a\"";
        Assert.Equal(
            "{\"series\":["
            + "{\"metric\":\"dtask.run.duration\",\"points\":[[1735732805,1500]],\"type\":\"gauge\",\"tags\":[" + tags + "],\"host\":\"node-a\"},"
            + "{\"metric\":\"dtask.run.count\",\"points\":[[1735732805,1]],\"type\":\"count\",\"tags\":[" + tags + ",\"result:succeeded\"],\"host\":\"node-a\"}"
            + "]}",
            request.Body);
        using var parsed = JsonDocument.Parse(request.Body);
        Assert.Equal(2, parsed.RootElement.GetProperty("series").GetArrayLength());
    }

    [Fact]
    public void Sending_to_a_port_nobody_listens_on_does_not_throw()
    {
        var sink = new DogStatsDSink("127.0.0.1", LoopbackHttpServer.FreeTcpPort(), new CapturingSink().CreateLogger(), TimeProvider.System);
        var notifier = new DataDogNotifier(sink, []);
        for (var i = 0; i < 3; i++)
        {
            notifier.LockLost(Runs.Backup(), "x");
        }
    }
}
