using Dtask.Executor.Notifications;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Notifications;

/// <summary>Runs every notification path, failures included, and searches the whole log for the secrets.</summary>
public class SecretHygieneTests
{
    private const string WebhookToken = "XOXB-WEBHOOK-TOKEN-7f3a";
    private const string ApiKey = "dd-api-key-9c1e5b";

    [Fact]
    public async Task Neither_the_webhook_nor_the_api_key_appear_in_the_log()
    {
        await using var flaky = new LoopbackHttpServer((n, _) => Task.FromResult(new LoopbackResponse(n switch
        {
            1 => 500,
            2 => 429,
            3 => 403,
            _ => 200,
        })));
        var closedPort = LoopbackHttpServer.FreeTcpPort();
        var log = new CapturingSink();

        foreach (var baseUri in new[] { flaky.BaseUri.ToString(), $"http://127.0.0.1:{closedPort}/" })
        {
            var environment = new Dictionary<string, string?>
            {
                ["SLACK_WEBHOOK"] = baseUri + "services/T0/B0/" + WebhookToken,
                ["DTASK_SLACK_ON"] = "all",
                ["DATADOG_API_KEY"] = ApiKey,
                ["DTASK_DATADOG_API_URL"] = baseUri,
            };
            var options = NotificationOptions.FromEnvironment(new EnvironmentSettings(environment));
            options = options with
            {
                Slack = options.Slack with { Delivery = options.Slack.Delivery with { InitialBackoff = TimeSpan.FromMilliseconds(5), MaxAttempts = 2, MaxRetryAfter = TimeSpan.Zero } },
                DataDog = options.DataDog with { Delivery = options.DataDog.Delivery with { InitialBackoff = TimeSpan.FromMilliseconds(5), MaxAttempts = 2 } },
            };
            var logger = log.CreateLogger();
            logger.Information("notification options: {Options}", options);

            await using (var notifiers = RunNotifiers.Create(options, logger))
            {
                Assert.Equal(2, notifiers.Notifiers.Count);
                var run = Runs.Backup();
                notifiers.RunStarted(run);
                notifiers.RunFinished(run, new RunOutcome(RunResult.Failed, TimeSpan.FromSeconds(2), 1, "tail"));
                notifiers.SlotMissed(new MissedSlot("ops", "backup", "node-a", 1, "deadline"));
                notifiers.LockLost(run, "renew failed");
            }
        }

        var text = log.AllText();
        Assert.Contains("slack webhook configured", text, StringComparison.Ordinal);
        Assert.Contains("not delivered", text, StringComparison.Ordinal);
        Assert.DoesNotContain(WebhookToken, text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("services/T0", text, StringComparison.Ordinal);
        Assert.DoesNotContain(ApiKey, text, StringComparison.OrdinalIgnoreCase);
    }
}
