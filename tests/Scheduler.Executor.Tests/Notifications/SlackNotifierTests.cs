using System.Diagnostics;
using System.Text.Json;
using Dtask.Executor.Notifications;
using Dtask.Executor.Notifications.Slack;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Notifications;

/// <summary>Slack messages against a real HTTP listener on loopback.</summary>
public sealed class SlackNotifierTests : IDisposable
{
    private static readonly HttpOutboxOptions Fast = new(
        Capacity: 16,
        RequestTimeout: TimeSpan.FromSeconds(5),
        MaxAttempts: 4,
        InitialBackoff: TimeSpan.FromMilliseconds(10),
        MaxBackoff: TimeSpan.FromMilliseconds(50),
        MaxRetryAfter: TimeSpan.FromSeconds(5),
        ShutdownDeadline: TimeSpan.FromSeconds(5));

    private readonly HttpClient client = new() { Timeout = Timeout.InfiniteTimeSpan };
    private readonly CapturingSink log = new();

    public void Dispose() => client.Dispose();

    private SlackNotifier Notifier(LoopbackHttpServer server, HttpOutboxOptions? delivery = null, IReadOnlySet<NotificationEvent>? on = null) =>
        new(
            new SlackOptions(new SecretText(new Uri(server.BaseUri, "services/T0/B0/tok").ToString()), on ?? NotificationEventNames.All, delivery ?? Fast),
            client,
            log.CreateLogger(),
            TimeProvider.System);

    private static string Text(RecordedRequest request)
    {
        using var json = JsonDocument.Parse(request.Body);
        return json.RootElement.GetProperty("text").GetString()!;
    }

    [Fact]
    public async Task The_message_arrives_as_json_with_quotes_newlines_backslashes_emoji_and_markup_intact()
    {
        await using var server = new LoopbackHttpServer();
        var run = Runs.Backup() with { Command = "echo \"hi\" \\n 'x' <y> & z 🚀" };
        var outcome = new RunOutcome(RunResult.Failed, TimeSpan.FromSeconds(3), 1, "C:\\path \"quoted\"\ttab\nsecond line 🎉 <b>&</b>\n");

        await using (var notifier = Notifier(server))
        {
            notifier.RunFinished(run, outcome);
        }

        var request = Assert.Single(await server.WaitForRequestsAsync(1));
        Assert.Equal("POST", request.Method);
        Assert.Equal("/services/T0/B0/tok", request.PathAndQuery);
        Assert.StartsWith("application/json", request.Headers["Content-Type"], StringComparison.Ordinal);
        var text = Text(request);
        Assert.Equal(SlackMessageComposer.Finished(run, outcome).Text, text);
        Assert.Contains("C:\\path \"quoted\"\ttab\nsecond line 🎉 &lt;b&gt;&amp;&lt;/b&gt;", text, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(request.Body);
        Assert.Equal(["text"], json.RootElement.EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public async Task A_server_error_twice_then_success_delivers_on_the_third_attempt()
    {
        await using var server = new LoopbackHttpServer((n, _) => Task.FromResult(new LoopbackResponse(n <= 2 ? 500 : 200)));
        var notifier = Notifier(server);

        notifier.RunStarted(Runs.Backup());
        var requests = await server.WaitForRequestsAsync(3);
        await notifier.DisposeAsync();

        Assert.Equal(3, requests.Count);
        Assert.Single(requests.Select(r => r.Body).Distinct());
        Assert.Equal(1, notifier.Delivered);
        Assert.Equal(0, notifier.Failed);
    }

    [Fact]
    public async Task Too_many_requests_waits_for_retry_after()
    {
        await using var server = new LoopbackHttpServer((n, _) => Task.FromResult(n == 1
            ? new LoopbackResponse(429, new Dictionary<string, string> { ["Retry-After"] = "1" })
            : LoopbackResponse.Ok));
        await using var notifier = Notifier(server);

        notifier.RunStarted(Runs.Backup());
        var requests = await server.WaitForRequestsAsync(2);

        // The ordinary backoff is 10 ms: a second attempt a second later can only be the Retry-After.
        Assert.True(requests[1].ReceivedAt - requests[0].ReceivedAt >= TimeSpan.FromMilliseconds(950), $"retried after {requests[1].ReceivedAt - requests[0].ReceivedAt}");
    }

    [Fact]
    public async Task A_listener_that_does_not_answer_does_not_hold_up_the_caller()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackHttpServer(async (_, _) =>
        {
            await gate.Task;
            return LoopbackResponse.Ok;
        });
        var notifier = Notifier(server);

        notifier.RunStarted(Runs.Backup());
        await server.WaitForRequestsAsync(1);
        notifier.RunFinished(Runs.Backup(), new RunOutcome(RunResult.Succeeded, TimeSpan.FromSeconds(1), 0, ""));
        notifier.LockLost(Runs.Backup(), "session invalidated");

        // The calls above returned while the listener still holds the first request.
        Assert.False(gate.Task.IsCompleted);
        Assert.Equal(0, notifier.Delivered);

        gate.SetResult();
        await notifier.DisposeAsync();
        Assert.Equal(3, notifier.Delivered);
    }

    [Fact]
    public async Task A_full_queue_drops_the_oldest_and_counts_it()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackHttpServer(async (_, _) =>
        {
            await gate.Task;
            return LoopbackResponse.Ok;
        });
        var notifier = Notifier(server, Fast with { Capacity = 2 });

        notifier.RunStarted(Runs.Backup() with { RunId = "r1" });
        await server.WaitForRequestsAsync(1);
        foreach (var id in new[] { "r2", "r3", "r4", "r5" })
        {
            notifier.RunStarted(Runs.Backup() with { RunId = id });
        }

        Assert.Equal(2, notifier.Dropped);
        gate.SetResult();
        await notifier.DisposeAsync();

        var delivered = server.Requests.Select(Text).Select(t => t.Contains("`r1`", StringComparison.Ordinal) ? "r1" : t.Contains("`r4`", StringComparison.Ordinal) ? "r4" : t.Contains("`r5`", StringComparison.Ordinal) ? "r5" : "other");
        Assert.Equal(["r1", "r4", "r5"], delivered);
    }

    [Fact]
    public async Task Shutdown_delivers_what_is_queued()
    {
        await using var server = new LoopbackHttpServer();
        var notifier = Notifier(server);

        notifier.RunStarted(Runs.Backup());
        notifier.RunFinished(Runs.Backup(), new RunOutcome(RunResult.TimedOut, TimeSpan.FromMinutes(5), null, "still going"));
        notifier.SlotMissed(new MissedSlot("ops", "backup", "node-b", 1_735_736_400, "consul unreachable"));
        await notifier.DisposeAsync();

        Assert.Equal(3, server.Requests.Count);
        Assert.Contains(":hourglass: *ops/backup* timed out", Text(server.Requests[1]), StringComparison.Ordinal);
        Assert.Contains("missed slot 2025-01-01 13:00:00Z (1735736400): consul unreachable", Text(server.Requests[2]), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Shutdown_gives_up_at_its_deadline_when_the_listener_never_answers()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackHttpServer(async (_, _) =>
        {
            await gate.Task;
            return LoopbackResponse.Ok;
        });
        var notifier = Notifier(server, Fast with { ShutdownDeadline = TimeSpan.FromMilliseconds(200) });

        notifier.RunStarted(Runs.Backup());
        notifier.RunStarted(Runs.Backup());
        await server.WaitForRequestsAsync(1);
        await notifier.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Equal(2, notifier.Failed);
        Assert.Equal(0, notifier.Delivered);
        gate.SetResult();
    }

    [Fact]
    public async Task A_client_error_is_final()
    {
        await using var server = new LoopbackHttpServer((_, _) => Task.FromResult(new LoopbackResponse(404)));
        var notifier = Notifier(server);

        notifier.RunStarted(Runs.Backup());
        await notifier.DisposeAsync();

        Assert.Single(server.Requests);
        Assert.Equal(1, notifier.Failed);
        Assert.Contains(log.Events, e => e.RenderMessage(System.Globalization.CultureInfo.InvariantCulture).Contains("HTTP 404", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Only_the_events_the_task_asked_for_are_sent()
    {
        await using var server = new LoopbackHttpServer();
        var notifier = Notifier(server, on: NotificationEventNames.All);
        var failureOnly = new TaskNotification(new HashSet<NotificationEvent> { NotificationEvent.Failure }, []);
        var run = Runs.Backup(notify: failureOnly);

        notifier.RunStarted(run);
        notifier.RunFinished(run, new RunOutcome(RunResult.Succeeded, TimeSpan.FromSeconds(1), 0, ""));
        notifier.RunFinished(run, new RunOutcome(RunResult.Failed, TimeSpan.FromSeconds(1), 1, ""));
        notifier.LockLost(run, "renew failed");
        notifier.RunStarted(Runs.Backup());
        await notifier.DisposeAsync();

        Assert.Equal(2, server.Requests.Count);
        Assert.StartsWith(":x:", Text(server.Requests[0]), StringComparison.Ordinal);
        Assert.StartsWith(":arrow_forward:", Text(server.Requests[1]), StringComparison.Ordinal);
    }

    [Fact]
    public void Retry_after_as_a_date_is_the_time_until_it()
    {
        var now = new DateTimeOffset(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.TooManyRequests);
        response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(now.AddSeconds(30));

        Assert.Equal(TimeSpan.FromSeconds(30), HttpOutbox.RetryAfter(response, now, TimeSpan.FromMinutes(2)));
        Assert.Equal(TimeSpan.FromSeconds(10), HttpOutbox.RetryAfter(response, now, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void Backoff_doubles_up_to_its_cap() =>
        Assert.Equal(
            [1, 2, 4, 8, 16, 30, 30],
            Enumerable.Range(1, 7).Select(a => (int)HttpOutboxOptions.Default.Backoff(a).TotalSeconds));
}
