using System.Net;
using System.Net.Sockets;
using System.Text;
using Dtask.Core.Metrics;
using Dtask.Executor.Metrics;
using Dtask.Executor.Notifications;
using Dtask.Executor.Notifications.DataDog;
using Dtask.Executor.Tests.Support;

namespace Dtask.Executor.Tests.Notifications;

/// <summary>Prometheus and DogStatsD read the same instruments: one run event shows in both, with the same value.</summary>
public class SameInstrumentsTests
{
    [Fact]
    public async Task Prometheus_and_DogStatsD_report_the_same_runs_and_missed_slots()
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;
        using var instruments = new ExecutorInstruments();
        using var prometheus = new PrometheusMeterExport(instruments.Meter, ExecutorInstruments.PrometheusLabel);
        var options = NotificationOptions.FromEnvironment(new EnvironmentSettings(new Dictionary<string, string?>
        {
            ["DD_AGENT_HOST"] = "127.0.0.1",
            ["DD_DOGSTATSD_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }));
        var run = Runs.Backup();
        await using (var notifiers = RunNotifiers.Create(options, new CapturingSink().CreateLogger(), instruments: instruments))
        {
            notifiers.RunStarted(run);
            notifiers.RunFinished(run, new RunOutcome(RunResult.Succeeded, TimeSpan.FromSeconds(2), 0, ""));
            notifiers.RunStarted(run);
            notifiers.RunFinished(run, new RunOutcome(RunResult.Failed, TimeSpan.FromSeconds(3), 1, ""));
            notifiers.SlotMissed(new MissedSlot("ops", "backup", "node-a", 7, "not-claimed-before-deadline"));
        }

        var received = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            var datagram = await udp.ReceiveAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
            received.Add(Encoding.UTF8.GetString(datagram.Buffer));
        }

        var text = await prometheus.ScrapeAsync();
        Assert.Single(received, d => d.StartsWith("dtask.run.count:1|c|", StringComparison.Ordinal) && d.EndsWith("result:succeeded", StringComparison.Ordinal));
        Assert.Contains("dtask_task_runs_total{namespace=\"ops\",state=\"succeeded\",task=\"backup\"} 1", text, StringComparison.Ordinal);
        Assert.Single(received, d => d.StartsWith("dtask.run.count:1|c|", StringComparison.Ordinal) && d.EndsWith("result:failed", StringComparison.Ordinal));
        Assert.Contains("dtask_task_runs_total{namespace=\"ops\",state=\"failed\",task=\"backup\"} 1", text, StringComparison.Ordinal);
        Assert.Single(received, d => d.StartsWith("dtask.slot.missed:1|c|", StringComparison.Ordinal));
        Assert.Contains("dtask_task_missed_slots_total{namespace=\"ops\",reason=\"not-claimed-before-deadline\",task=\"backup\"} 1", text, StringComparison.Ordinal);
        Assert.Equal(2, received.Count(d => d.StartsWith("dtask.fire.delay:", StringComparison.Ordinal)));
        Assert.Contains("dtask_fire_delay_seconds_count 2", text, StringComparison.Ordinal);
        Assert.Contains("dtask.run.duration:2000|d|", string.Join('\n', received), StringComparison.Ordinal);
        Assert.Contains("dtask_run_duration_seconds_sum 5", text, StringComparison.Ordinal);
        Assert.Contains("dtask_task_running{namespace=\"ops\",task=\"backup\"} 0", text, StringComparison.Ordinal);
        Assert.Contains("dtask_task_last_schedule_time_seconds{namespace=\"ops\",task=\"backup\"}", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_run_retried_counts_as_one_running_until_it_ends_and_deleted_tasks_leave_the_run_gauges()
    {
        using var instruments = new ExecutorInstruments();
        using var prometheus = new PrometheusMeterExport(instruments.Meter, ExecutorInstruments.PrometheusLabel);
        var tasks = new HashSet<string>(StringComparer.Ordinal) { "backup" };
        instruments.Observe(() => [], () => null, () => 0, taskExists: (_, name) => tasks.Contains(name));
        var run = Runs.Backup();

        instruments.Notifier.RunStarted(run);
        instruments.Notifier.RunStarted(run with { FireDelay = TimeSpan.FromSeconds(5) }); // the retry of the same run
        Assert.Contains("dtask_task_running{namespace=\"ops\",task=\"backup\"} 1", await prometheus.ScrapeAsync(), StringComparison.Ordinal);
        instruments.Notifier.RunFinished(run, new RunOutcome(RunResult.Failed, TimeSpan.FromSeconds(1), 1, ""));
        var text = await prometheus.ScrapeAsync();
        Assert.Contains("dtask_task_running{namespace=\"ops\",task=\"backup\"} 0", text, StringComparison.Ordinal);
        Assert.Contains("dtask_fire_delay_seconds_count 2", text, StringComparison.Ordinal);

        tasks.Clear();
        text = await prometheus.ScrapeAsync();
        Assert.DoesNotContain("dtask_task_running{", text, StringComparison.Ordinal);
        Assert.DoesNotContain("dtask_task_last_schedule_time_seconds{", text, StringComparison.Ordinal);
        Assert.Contains("dtask_task_runs_total{namespace=\"ops\",state=\"failed\",task=\"backup\"} 1", text, StringComparison.Ordinal);
    }
}
