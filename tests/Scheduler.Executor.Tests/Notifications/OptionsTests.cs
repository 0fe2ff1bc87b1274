using Dtask.Executor.Notifications;
using Dtask.Executor.Notifications.DataDog;
using Dtask.Executor.Notifications.Slack;

namespace Dtask.Executor.Tests.Notifications;

public class OptionsTests
{
    private const string Webhook = "https://hooks.example.test/services/T111/B222/WEBHOOKSECRET";
    private const string ApiKey = "APIKEYSECRET0123456789";

    private static EnvironmentSettings Env(params (string Name, string Value)[] variables) =>
        new(variables.ToDictionary(v => v.Name, v => (string?)v.Value));

    [Fact]
    public void Slack_reads_the_original_variable_and_the_default_events()
    {
        var options = SlackOptions.FromEnvironment(Env(("SLACK_WEBHOOK", Webhook)));

        Assert.True(options.Enabled);
        Assert.Equal(Webhook, options.Webhook!.Reveal());
        Assert.Equal(NotificationEventNames.Default, options.On);
        Assert.False(SlackOptions.FromEnvironment(Env()).Enabled);
    }

    [Fact]
    public void Secrets_come_from_files_too()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, Webhook + "\n");
            var options = SlackOptions.FromEnvironment(Env(("SLACK_WEBHOOK_FILE", path), ("DTASK_SLACK_ON", "start, failure")));

            Assert.Equal(Webhook, options.Webhook!.Reveal());
            Assert.Equal(new HashSet<NotificationEvent> { NotificationEvent.Start, NotificationEvent.Failure }, options.On);
            Assert.Throws<InvalidOperationException>(() => Env(("DD_API_KEY_FILE", path + ".missing")).Secret("DD_API_KEY"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_malformed_webhook_is_refused_without_repeating_it()
    {
        var error = Assert.Throws<FormatException>(() => SlackOptions.FromEnvironment(Env(("SLACK_WEBHOOK", "WEBHOOKSECRET-not-a-url"))));
        Assert.DoesNotContain("WEBHOOKSECRET", error.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, (string, string)[], DataDogMode, string, int> Modes => new()
    {
        { "nothing set: local agent", [], DataDogMode.DogStatsD, "127.0.0.1", 8125 },
        { "agent host and port", [("DD_AGENT_HOST", "10.1.2.3"), ("DD_DOGSTATSD_PORT", "9125")], DataDogMode.DogStatsD, "10.1.2.3", 9125 },
        { "dogstatsd url", [("DD_DOGSTATSD_URL", "udp://statsd.local:8200")], DataDogMode.DogStatsD, "statsd.local", 8200 },
        { "only an api key (original mode)", [("DATADOG_API_KEY", ApiKey)], DataDogMode.SeriesApi, "127.0.0.1", 8125 },
        { "api key and an agent: the agent", [("DD_API_KEY", ApiKey), ("DD_AGENT_HOST", "10.1.2.3")], DataDogMode.DogStatsD, "10.1.2.3", 8125 },
        { "forced off", [("DTASK_DATADOG", "off")], DataDogMode.Off, "127.0.0.1", 8125 },
    };

    [Theory]
    [MemberData(nameof(Modes))]
    public void DataDog_mode_follows_what_is_configured(string name, (string, string)[] variables, DataDogMode mode, string host, int port)
    {
        _ = name;
        var options = DataDogOptions.FromEnvironment(Env(variables));

        Assert.Equal(mode, options.Mode);
        Assert.Equal(host, options.AgentHost);
        Assert.Equal(port, options.AgentPort);
    }

    [Fact]
    public void DataDog_tags_site_and_api_url()
    {
        var options = DataDogOptions.FromEnvironment(Env(
            ("DD_API_KEY", ApiKey), ("DD_ENV", "prod"), ("DD_SERVICE", "dtask"), ("DD_VERSION", "1.0"), ("DD_TAGS", "team:infra region:eu"), ("DD_SITE", "datadoghq.eu")));

        Assert.Equal(["env:prod", "service:dtask", "version:1.0", "team:infra", "region:eu"], options.ConstantTags);
        Assert.Equal(new Uri("https://api.datadoghq.eu"), options.ApiBaseUrl);
        Assert.Equal(
            new Uri("http://127.0.0.1:9/"),
            DataDogOptions.FromEnvironment(Env(("DTASK_DATADOG_API_URL", "http://127.0.0.1:9/"))).ApiBaseUrl);
        Assert.Throws<FormatException>(() => DataDogOptions.FromEnvironment(Env(("DD_DOGSTATSD_URL", "unix:///var/run/dsd.socket"))));
    }

    [Fact]
    public void Options_never_print_their_secrets()
    {
        var options = NotificationOptions.FromEnvironment(Env(("SLACK_WEBHOOK", Webhook), ("DD_API_KEY", ApiKey)));
        var printed = options.ToString() + options.Slack + options.DataDog + options.Slack.Webhook + options.DataDog.ApiKey;

        Assert.DoesNotContain("WEBHOOKSECRET", printed, StringComparison.Ordinal);
        Assert.DoesNotContain(ApiKey, printed, StringComparison.Ordinal);
        Assert.Contains("(secret)", printed, StringComparison.Ordinal);
    }
}
