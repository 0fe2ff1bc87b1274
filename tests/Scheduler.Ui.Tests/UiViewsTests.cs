using Dtask.Cli.Ui;
using Dtask.Core.Model;

namespace Dtask.Ui.Tests;

/// <summary>The schedule in words and the spec as the page shows it: no secret among the fields.</summary>
public sealed class UiViewsTests
{
    [Theory]
    [InlineData(null, "90s", "every 1m30s")]
    [InlineData("* * * * *", null, "every minute")]
    [InlineData("*/10 * * * *", null, "every 10 minutes")]
    [InlineData("5 * * * *", null, "every hour at :05")]
    [InlineData("30 4 * * *", null, "every day at 04:30")]
    [InlineData("0 9 * * 1", null, "every Monday at 09:00")]
    [InlineData("@daily", null, "every day at midnight")]
    [InlineData("0 9 1-7 * 1", null, null)]
    public void The_common_schedules_read_in_words(string? cron, string? every, string? words) =>
        Assert.Equal(words, UiViews.Words(new ScheduledTaskSpec { Schedule = cron, Every = every }));

    [Fact]
    public void Env_values_and_notification_secrets_never_reach_the_spec_fields()
    {
        var spec = new ScheduledTaskSpec
        {
            Schedule = "0 * * * *",
            Command = ["backup"],
            Env = [new EnvVar { Name = "TOKEN", Value = "hunter2-secret" }, new EnvVar { Name = "KEY", ValueFrom = new EnvVarSource { File = "/run/secrets/key" } }],
            Notify = new NotifySpec { Slack = new SlackNotify { Channel = "#ops" }, Datadog = new DatadogNotify { Tags = ["team:infra"] } },
        };
        var text = string.Join("\n", UiViews.SpecFields(spec).Select(f => $"{f.Label}: {f.Value}"));
        Assert.DoesNotContain("hunter2-secret", text, StringComparison.Ordinal);
        Assert.DoesNotContain("/run/secrets/key", text, StringComparison.Ordinal);
        Assert.Contains("Environment: TOKEN (value hidden), KEY (from a file)", text, StringComparison.Ordinal);
        Assert.Contains("Notify: Slack #ops on failure, missed, lost; DataDog (tags team:infra)", text, StringComparison.Ordinal);
    }
}
