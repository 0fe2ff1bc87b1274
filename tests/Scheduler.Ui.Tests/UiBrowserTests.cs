using System.Diagnostics;
using System.Globalization;
using System.Net;
using Dtask.Cli;
using Dtask.Ui.Tests.Support;
using OpenQA.Selenium;

namespace Dtask.Ui.Tests;

/// <summary>
/// <c>dtask ui</c> in a real headless Chromium against a real Consul agent and two real executors: what a person sees
/// on each view. Each view's test also writes its screenshot (1280×800) to <c>docs/ui/</c>.
/// </summary>
public sealed class UiBrowserTests(UiFleet fleet) : IClassFixture<UiFleet>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private OpenQA.Selenium.Chrome.ChromeDriver Driver => fleet.Driver;

    private void Open(Uri server, string route)
    {
        Driver.Navigate().GoToUrl(new Uri(server, "/#/" + route));
    }

    // Read in one script, so a re-render between two reads cannot leave a stale element.
    private string Text(string css) => (string)Driver.ExecuteScript("return [...document.querySelectorAll(arguments[0])].map(e => e.innerText).join('\\n')", css)!;

    private List<string> Attributes(string css, string attribute) =>
        [.. ((IEnumerable<object>)Driver.ExecuteScript("return [...document.querySelectorAll(arguments[0])].map(e => arguments[1] === 'textContent' ? e.textContent : e.getAttribute(arguments[1]) ?? '')", css, attribute)!).Select(o => (string)o)];

    private async Task SeeAsync(string css, string text, string why, TimeSpan? within = null)
    {
        var patience = within ?? Patience;
        Assert.True(await Browser.EventuallyAsync(() => Text(css).Contains(text, StringComparison.Ordinal), patience),
            $"{why}: no '{text}' in '{css}' within {patience.TotalSeconds} s; it shows:\n{Text("main")}\n{fleet.ExecutorOutput}");
    }

    private int Dtask(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        return Program.Run([.. args, "--consul", fleet.Consul, "--prefix", fleet.Layout.Prefix], output, error);
    }

    [Fact]
    public async Task Tasks_view_shows_each_task_its_schedule_and_last_run_and_follows_Consul_live()
    {
        Open(fleet.ActionsUi, "tasks");
        await SeeAsync("tr[data-task='ui/beat'] .last-run", "succeeded", "a task that ran shows its last result");
        Assert.Matches("alpha|beta", Text("tr[data-task='ui/beat'] .last-run"));
        await SeeAsync("tr[data-task='ui/nightly']", "every day at 04:30", "the schedule in words");
        await SeeAsync("tr[data-task='ui/nightly']", "Europe/Berlin", "the next fire in the task's time zone");
        await SeeAsync("tr[data-task='ui/nightly']", "never ran", "a task that never ran");
        Assert.Contains("4 tasks", Text("#count"), StringComparison.Ordinal);

        // A change in Consul reaches the open page by itself (server-sent events), within about a second.
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, Dtask("suspend", "ui/nightly"));
        Assert.True(await Browser.EventuallyAsync(() => Text("tr[data-task='ui/nightly'] .state").Contains("suspended", StringComparison.Ordinal), TimeSpan.FromSeconds(5)),
            "the suspension never showed without a reload");
        var seenAfter = clock.Elapsed;
        Assert.True(seenAfter < TimeSpan.FromSeconds(2), $"the suspension showed only after {seenAfter.TotalMilliseconds:0} ms");
        Browser.Screenshot(Driver, "tasks");
        Assert.Equal(0, Dtask("resume", "ui/nightly"));
        await SeeAsync("tr[data-task='ui/nightly'] .state", "ok", "resumed");

        // No secret reaches the page: the env value and the webhook stay out, names and the channel are shown.
        Open(fleet.ActionsUi, "task/ui/nightly");
        await SeeAsync("#spec", "API_KEY (value hidden)", "env names without values");
        await SeeAsync("#spec", "Slack #ops", "the notification kind and channel");
        Assert.DoesNotContain("s3cr3t-value-never-shown", Driver.PageSource, StringComparison.Ordinal);
        await SeeAsync("#next-slots", "04:30:00 CET", "the next slots in the task's zone, as dtask schedule prints them");
        Assert.Equal(10, Driver.FindElements(By.CssSelector("#next-slots tbody tr")).Count);
    }

    [Fact]
    public async Task Timeline_shows_a_run_within_two_seconds_of_its_slot()
    {
        Open(fleet.ActionsUi, "timeline");
        await SeeAsync("#count", "nodes", "the timeline loaded");
        var after = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1;
        long slot = 0;
        var found = await Browser.EventuallyAsync(() =>
        {
            slot = Attributes(".mark[data-task='ui/beat']", "data-slot").Select(s => long.TryParse(s, CultureInfo.InvariantCulture, out var v) ? v : 0).Where(s => s >= after).DefaultIfEmpty().Min();
            return slot > 0;
        }, TimeSpan.FromSeconds(10));
        var seenAt = DateTimeOffset.UtcNow;
        Assert.True(found, $"no run of ui/beat for a slot after {after} appeared");
        var lag = seenAt - DateTimeOffset.FromUnixTimeSeconds(slot);
        Assert.True(lag < TimeSpan.FromSeconds(2.5), $"the run of slot {slot} appeared {lag.TotalMilliseconds:0} ms after its slot");
        Assert.Contains(Attributes($".mark[data-task='ui/beat'][data-slot='{slot}']", "data-node")[0], fleet.Nodes);

        // Hovering a finished run tells its fire delay.
        await SeeAsync("#count", "marks", "marks counted");
        Assert.True(await Browser.EventuallyAsync(() => Attributes(".mark.succeeded[data-task='ui/beat'] title", "textContent")
            .Any(t => t.Contains("fire delay:", StringComparison.Ordinal)), Patience), "no fire delay on hover");

        // The last 5 minutes, where the test fleet's runs spread out.
        Driver.ExecuteScript("document.querySelector(\"button[data-range='5m']\").click()");
        await SeeAsync(".seg button.active", "Last 5 min", "the range switched");
        await SeeAsync("#count", "marks", "the timeline reloaded");
        Browser.Screenshot(Driver, "timeline");
    }

    [Fact]
    public async Task A_slot_missed_while_every_executor_was_stopped_shows_with_its_reason()
    {
        // The task has run before the executors stop: a task that never ran has no slot to miss when they come back
        // (they plan it from the moment they see it).
        Open(fleet.ActionsUi, "timeline");
        Assert.True(await Browser.EventuallyAsync(() => Driver.FindElements(By.CssSelector(".mark.succeeded[data-task='ui/beat']")).Count > 0, Patience),
            $"ui/beat never ran:\n{Text("main")}\n{fleet.ExecutorOutput}");
        await fleet.StopExecutorsAsync();
        var stoppedAt = DateTimeOffset.UtcNow;
        try
        {
            // Two slots of ui/beat (every 2 s) pass with nobody to fire them.
            var wait = stoppedAt + TimeSpan.FromSeconds(5) - DateTimeOffset.UtcNow;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, TestContext.Current.CancellationToken);
            }
        }
        finally
        {
            await fleet.StartExecutorsAsync();
        }

        Open(fleet.ActionsUi, "timeline");
        // Restarted executors write no marker until each has timed the other's clock (at most 30 s, docs/architecture.md).
        await SeeAsync("#not-run-table tr[data-task='ui/beat'][data-state='missed'] .reason", "not-fired-in-time", "the missed slot's reason", TimeSpan.FromSeconds(50));
        Assert.Contains(Attributes(".mark.missed[data-task='ui/beat'] title", "textContent"), t => t.Contains("reason: not-fired-in-time", StringComparison.Ordinal));
        var slots = Attributes(".mark.missed[data-task='ui/beat']", "data-slot").Select(s => long.Parse(s, CultureInfo.InvariantCulture));
        Assert.Contains(slots, s => s >= stoppedAt.ToUnixTimeSeconds());
    }

    [Fact]
    public async Task Output_with_a_script_tag_is_shown_as_the_characters_it_is()
    {
        Open(fleet.ActionsUi, "task/ui/xss");
        Assert.True(await Browser.EventuallyAsync(() =>
        {
            Driver.FindElements(By.CssSelector("#history details summary")).FirstOrDefault()?.Click();
            return Driver.FindElements(By.CssSelector("#history details[open] pre.tail")).Count > 0;
        }, Patience), $"no run with output:\n{Text("main")}");
        await SeeAsync("#history pre.tail", "<script>alert(1)</script>", "the output as text");
        Assert.Empty(Driver.FindElements(By.CssSelector("#history script, #history pre.tail *")));
        Assert.Throws<NoAlertPresentException>(() => Driver.SwitchTo().Alert());
    }

    [Fact]
    public async Task Without_allow_actions_there_are_no_action_buttons_and_the_server_refuses_them()
    {
        Open(fleet.ReadOnlyUi, "task/ui/manual");
        await SeeAsync("#spec", "Shell", "the task view loaded");
        Assert.Empty(Driver.FindElements(By.CssSelector(".actions button")));
        var ranBefore = File.Exists(fleet.Witness) ? File.ReadAllLines(fleet.Witness).Length : 0; // the trigger test may have run first

        using var http = new HttpClient();
        using var refused = await http.PostAsync(new Uri(fleet.ReadOnlyUi, "/api/actions/trigger?ns=ui&name=manual"), null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);

        // With actions on, a request without the page's token, or from another origin, is refused too.
        using var noToken = await http.PostAsync(new Uri(fleet.ActionsUi, "/api/actions/trigger?ns=ui&name=manual"), null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, noToken.StatusCode);
        Open(fleet.ActionsUi, "tasks");
        var token = Driver.FindElement(By.CssSelector("meta[name='dtask-csrf']")).GetAttribute("content");
        Assert.False(string.IsNullOrEmpty(token));
        using var foreign = new HttpRequestMessage(HttpMethod.Post, new Uri(fleet.ActionsUi, "/api/actions/trigger?ns=ui&name=manual"));
        foreign.Headers.Add("X-Dtask-Csrf", token);
        foreign.Headers.Add("Origin", "http://evil.example");
        using var fromElsewhere = await http.SendAsync(foreign, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, fromElsewhere.StatusCode);
        Assert.Equal(ranBefore, File.Exists(fleet.Witness) ? File.ReadAllLines(fleet.Witness).Length : 0);
    }

    [Fact]
    public async Task A_trigger_through_the_page_runs_the_task_exactly_once()
    {
        Open(fleet.ActionsUi, "task/ui/manual");
        await SeeAsync("#spec", "Shell", "the task view loaded");
        Assert.True(await Browser.EventuallyAsync(() => Driver.FindElements(By.Id("action-trigger")).Count == 1, Patience), "no trigger button");
        // Clicked in one script: the view may re-render between finding the button and a WebDriver click.
        Driver.ExecuteScript("document.getElementById('action-trigger').click()");
        await SeeAsync("#action-message", "triggered (request ", "the CLI's message for a trigger");
        await SeeAsync("#history", "manual #", "the manual run in the history");
        await SeeAsync("#history tr[data-state='succeeded']", "manual #", "the manual run finished");

        // Finished, and no request left pending: the witness has the run's one line.
        Assert.True(await Browser.EventuallyAsync(() => !Text("#status").Contains("trigger", StringComparison.Ordinal) && Driver.FindElements(By.XPath("//h2[.='Pending requests']")).Count == 0, Patience),
            "the trigger request stayed pending");
        var lines = File.ReadAllLines(fleet.Witness).Where(l => l.Length > 0).ToList();
        Assert.Single(lines);
        Browser.Screenshot(Driver, "task");
    }

    [Fact]
    public async Task Nodes_view_lists_the_executors_with_version_skew_and_last_seen()
    {
        Open(fleet.ActionsUi, "nodes");
        foreach (var node in fleet.Nodes)
        {
            await SeeAsync($"tr[data-node='{node}']", "ready", $"executor {node}");
        }

        await SeeAsync("#nodes", "ago", "last seen and start times");
        Assert.Equal(2, Driver.FindElements(By.CssSelector("#nodes tbody tr")).Count);
        Browser.Screenshot(Driver, "nodes");
    }
}
