using System.Text.Json;
using Dtask.Core.State;
using Dtask.Ui.Tests.Support;

namespace Dtask.Ui.Tests;

/// <summary><c>dtask operator --ui-listen</c>: a real operator process serves the page beside it, with the tasks it reconciled.</summary>
public sealed class OperatorUiTests(ConsulFixture consul) : IClassFixture<ConsulFixture>
{
    [Fact]
    public async Task The_operator_serves_the_page_with_the_tasks_it_reconciled()
    {
        using var manifests = new TempDirectory();
        manifests.Write("report.yaml", """
            apiVersion: dtask.dev/v1alpha1
            kind: ScheduledTask
            metadata: {name: report, namespace: team}
            spec:
              schedule: "0 9 * * 1"
              command: ["true"]
            """);
        var layout = new KvLayout(TestKvPrefix.New());
        await using var op = DtaskProcess.Start("operator", "--source", "dir:" + manifests.Path, "--ui-listen", "127.0.0.1:0",
            "--consul", $"{consul.Agent.Address.Host}:{consul.Agent.Address.Port}", "--prefix", layout.Prefix);
        var line = await op.WaitForLineAsync("dtask ui: serving ", TimeSpan.FromSeconds(30));
        Assert.Contains("(actions off)", line, StringComparison.Ordinal);
        var ui = new Uri(line.Split(' ')[3]);
        using var http = new HttpClient();
        var found = await Browser.EventuallyAsync(() =>
        {
            var page = JsonDocument.Parse(http.GetStringAsync(new Uri(ui, "/api/tasks")).GetAwaiter().GetResult()).RootElement;
            return page.GetProperty("items").EnumerateArray().Any(t => t.GetProperty("name").GetString() == "report"
                && t.GetProperty("owner").GetString()!.StartsWith("dir:", StringComparison.Ordinal)
                && t.GetProperty("scheduleWords").GetString() == "every Monday at 09:00");
        }, TimeSpan.FromSeconds(30));
        Assert.True(found, $"the reconciled task never showed on the operator's page:\n{op.Output}");
        await op.StopAsync();
    }

    [Fact]
    public async Task Dtask_ui_stops_on_SIGTERM_with_exit_0()
    {
        await using var ui = DtaskProcess.Start("ui", "--listen", "127.0.0.1:0", "--consul", $"{consul.Agent.Address.Host}:{consul.Agent.Address.Port}");
        await ui.WaitForLineAsync("dtask ui: serving ", TimeSpan.FromSeconds(30));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await ui.StopAsync();
        Assert.Equal(0, ui.ExitCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"dtask ui took {clock.Elapsed.TotalSeconds:0.0} s to stop");
    }
}
