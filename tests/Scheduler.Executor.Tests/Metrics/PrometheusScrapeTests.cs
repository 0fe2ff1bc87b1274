using System.Diagnostics;
using System.Globalization;
using Dtask.Core.Model;
using Dtask.Core.State;
using Dtask.Executor.Tests.Cli;
using Dtask.Executor.Tests.Daemon;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;

namespace Dtask.Executor.Tests.Metrics;

/// <summary>
/// A real Prometheus server scrapes two real executor processes (<c>--metrics-listen</c>) and a real operator process
/// (<c>/metrics</c> beside its health endpoints) on the real agent, and its query API gives what the run records say.
/// </summary>
public sealed class PrometheusScrapeTests(ConsulFixture consul)
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Prometheus_scrapes_the_executors_and_the_operator_and_its_counts_match_the_run_records()
    {
        await using var world = new DaemonWorld(consul.Agent.Address, consul.NewClient());
        using var manifests = new TempDirectory();
        var ran = world.PathOf("ran");
        manifests.Write("tick.yaml", Manifest("tick", "2s", $"echo \"$DTASK_SLOT $DTASK_NODE\" >> {ran}", suspend: false));
        manifests.Write("gap.yaml", Manifest("gap", "5s", "true", suspend: false));
        manifests.Write("broken.yaml", "apiVersion: dtask.dev/v1alpha1\nkind: ScheduledTask\nmetadata:\n  name: broken\n  namespace: ops\nspec:\n  command: [\"true\"]\n");
        int portA = PrometheusServer.FreePort(), portB = PrometheusServer.FreePort(), portOperator = PrometheusServer.FreePort();
        using var operatorProcess = StartOperator(world, manifests.Path, portOperator);
        var a = world.Start("metrics-a", null, "--metrics-listen", $"127.0.0.1:{portA}");
        var b = world.Start("metrics-b", null, "--metrics-listen", $"127.0.0.1:{portB}");
        await using var prometheus = await PrometheusServer.StartAsync(new Dictionary<string, IReadOnlyList<string>>
        {
            ["dtask-executor"] = [$"127.0.0.1:{portA}", $"127.0.0.1:{portB}"],
            ["dtask-operator"] = [$"127.0.0.1:{portOperator}"],
        });
        await a.ReadyAsync();
        await b.ReadyAsync();
        Assert.True(await a.WaitForAsync($"metrics at http://127.0.0.1:{portA}/metrics", Within), a.Output);

        var tick = new TaskId("ops", "tick");
        var gap = new TaskId("ops", "gap");
        Assert.True(await Eventually.TrueAsync(async () => (await world.HistoryAsync(tick)).Count(r => r.State == RunState.Succeeded) >= 6, Within),
            $"tick did not run six times\n{a.Output}\n{b.Output}");
        Assert.True(await Eventually.TrueAsync(async () => (await prometheus.TargetsAsync()).Values.All(h => h == "up") , Within),
            $"not every target is up: {string.Join(", ", (await prometheus.TargetsAsync()).Select(t => t.Key + "=" + t.Value))}\n{prometheus.Output}");

        // Freeze tick, then Prometheus must count exactly its run records (both executors' counters summed).
        manifests.Write("tick.yaml", Manifest("tick", "2s", $"echo \"$DTASK_SLOT $DTASK_NODE\" >> {ran}", suspend: true));
        Assert.True(await Eventually.TrueAsync(async () => await prometheus.ValueAsync("max(dtask_task_suspended{namespace=\"ops\",task=\"tick\"})") == 1, Within),
            "dtask_task_suspended never showed tick suspended");
        Assert.True(await Eventually.TrueAsync(async () => (await world.HistoryAsync(tick)).All(r => !r.IsRunning), Within), "tick still runs");
        var records = (await world.HistoryAsync(tick)).Where(r => r.State is RunState.Succeeded or RunState.Failed).ToList();
        var witnessed = world.ReadLines("ran").Length;
        Assert.Equal(witnessed, records.Count);
        var runsQuery = "sum(dtask_task_runs_total{namespace=\"ops\",task=\"tick\"})";
        Assert.True(await Eventually.TrueAsync(async () => await prometheus.ValueAsync(runsQuery) == records.Count, Within),
            $"{runsQuery} = {await prometheus.ValueAsync(runsQuery)}, but {records.Count} run records");
        var succeededQuery = "sum(dtask_task_runs_total{namespace=\"ops\",task=\"tick\",state=\"succeeded\"})";
        Assert.Equal(records.Count(r => r.State == RunState.Succeeded), await prometheus.ValueAsync(succeededQuery));
        Assert.Equal(records.Max(r => r.Slot), await prometheus.ValueAsync("max(dtask_task_last_schedule_time_seconds{namespace=\"ops\",task=\"tick\"})"));
        Assert.True(await prometheus.ValueAsync("max(dtask_task_last_successful_time_seconds{namespace=\"ops\",task=\"tick\"})") >= records.Max(r => r.Slot));
        Assert.True(await prometheus.ValueAsync("min(dtask_task_next_schedule_time_seconds{namespace=\"ops\",task=\"gap\"})") > records.Max(r => r.Slot));
        Assert.True(await prometheus.ValueAsync("sum(dtask_claims_total{outcome=\"won\"})") >= records.Count);
        Assert.True(await prometheus.ValueAsync("sum(dtask_consul_requests_total{endpoint=\"txn\"})") > 0);
        Assert.True(await prometheus.ValueAsync("sum(dtask_session_renewals_total)") >= 0);
        Assert.NotNull(await prometheus.ValueAsync("max(dtask_clock_skew_seconds)"));
        Assert.True(await prometheus.ValueAsync("sum(dtask_fire_delay_seconds_count)") >= records.Count);

        // The operator: leading, one invalid manifest, reconciles counted.
        Assert.Equal(1, await prometheus.ValueAsync("dtask_operator_leader{source=\"directory\"}"));
        Assert.Equal(1, await prometheus.ValueAsync("dtask_operator_invalid_manifests{source=\"directory\"}"));
        Assert.True(await prometheus.ValueAsync("sum(dtask_operator_reconciles_total{source=\"directory\",result=\"invalid\"})") >= 2);
        Assert.True(await prometheus.ValueAsync("sum(dtask_operator_reconcile_duration_seconds_count{source=\"directory\"})") >= 2);

        // Every executor stopped through a slot of gap: the one that comes back records it missed, and the counter rises.
        Assert.Null(await prometheus.ValueAsync("sum(dtask_task_missed_slots_total{namespace=\"ops\",task=\"gap\"})"));
        Assert.Equal(0, await a.StopAsync());
        Assert.Equal(0, await b.StopAsync());
        var stoppedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var missedSlot = (stoppedAt / 5 * 5) + 5;
        var back = DateTimeOffset.FromUnixTimeSeconds(missedSlot).AddMilliseconds(1500);
        if (back > DateTimeOffset.UtcNow)
        {
            await Task.Delay(back - DateTimeOffset.UtcNow, TestContext.Current.CancellationToken);
        }

        var again = world.Start("metrics-a", null, "--metrics-listen", $"127.0.0.1:{portA}");
        await again.ReadyAsync();
        Assert.True(await Eventually.TrueAsync(async () => (await world.HistoryAsync(gap)).Any(r => r.Slot == missedSlot && r.State == RunState.Missed), Within),
            $"slot {missedSlot} of gap was not recorded missed:\n{again.Output}");
        // A slow restart may miss a later slot too, recorded a moment after the first, and a slot left undecided by the
        // stop is recorded passed-over by the first claim after it: both sides are read again each time (nothing of gap
        // was recorded missed before the stop).
        async Task<int> MissedRecordsAsync() => (await world.HistoryAsync(gap)).Count(r => r.State == RunState.Missed && r.Node == "metrics-a");
        var missedQuery = $"sum(dtask_task_missed_slots_total{{namespace=\"ops\",task=\"gap\",instance=\"127.0.0.1:{portA}\"}})";
        Assert.True(await Eventually.TrueAsync(async () => await prometheus.ValueAsync(missedQuery) == await MissedRecordsAsync(), Within),
            $"{missedQuery} = {await prometheus.ValueAsync(missedQuery)}, but {await MissedRecordsAsync()} missed records");
        Assert.Equal(0, await again.StopAsync());
    }

    private static string Manifest(string name, string every, string shell, bool suspend) => $"""
        apiVersion: dtask.dev/v1alpha1
        kind: ScheduledTask
        metadata:
          name: {name}
          namespace: ops
        spec:
          every: {every}
          shell: '{shell.Replace("'", "''", StringComparison.Ordinal)}'
          startingDeadline: 1s
          history: 100
          suspend: {(suspend ? "true" : "false")}
        """;

    private static OperatorRun StartOperator(DaemonWorld world, string directory, int port)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["exec", DtaskProcess.DllPath, "operator", "--source", "dir:" + directory, "--consul", world.Consul.ToString(),
                     "--prefix", world.Prefix, "--health-port", port.ToString(CultureInfo.InvariantCulture), "--health-address", "127.0.0.1", "--resync", "2s"])
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment.Remove("CONSUL_HTTP_ADDR");
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new OperatorRun(process);
    }

    private sealed class OperatorRun(Process process) : IDisposable
    {
        public void Dispose()
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }

            process.Dispose();
        }
    }
}
