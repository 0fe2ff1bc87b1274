using System.Diagnostics;
using Dtask.Core.State;
using Dtask.Operator.Sources.Directory;
using Dtask.Operator.Status;
using Dtask.Operator.Tests.Support;

namespace Dtask.Operator.Tests;

/// <summary>The operator (directory source) and two <c>dtask executor</c> processes on the real agent.</summary>
public sealed class EndToEndTests(ConsulFixture consul) : IDisposable
{
    private readonly KvLayout layout = ConsulFixture.NewLayout();
    private readonly TempDirectory folder = new();
    private readonly List<Process> executors = [];
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        foreach (var executor in executors)
        {
            if (!executor.HasExited)
            {
                executor.Kill(entireProcessTree: true);
                executor.WaitForExit(5000);
            }

            executor.Dispose();
        }

        folder.Dispose();
    }

    private void StartExecutor(string node)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "exec", DtaskBuild.Dll(), "executor", "--node", node, "--consul", consul.Agent.Address.ToString(),
                     "--prefix", layout.Prefix, "--session-ttl", "10s", "--shutdown-grace", "2s" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DTASK_LOG_FORMAT"] = "console";
        start.Environment.Remove("CONSUL_HTTP_ADDR");
        start.Environment.Remove("SLACK_WEBHOOK");
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start dotnet");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        executors.Add(process);
    }

    [Fact]
    public async Task A_manifest_in_the_operators_directory_runs_on_one_of_two_executors_and_its_status_shows_the_run()
    {
        StartExecutor("node-1");
        StartExecutor("node-2");
        folder.Write("tick.yaml", Manifest.Yaml("ops", "tick", every: "1s"));
        using var client = consul.NewClient();
        var service = new DirectoryOperator(client, layout, new DirectorySourceOptions(folder.Path)
        {
            LockDelay = TimeSpan.Zero,
            SessionTtl = TimeSpan.FromSeconds(10),
        });
        await service.StartAsync(Ct);
        try
        {
            var reader = new TaskObservationReader(consul.Client, layout);
            var observation = await Eventually.ReturnsAsync(() => reader.ReadAsync("ops", "tick", Ct),
                o => o.History.Any(r => r.State == RunState.Succeeded), "a finished run of ops/tick", TimeSpan.FromSeconds(30));

            var status = observation.StatusAt(TimeProvider.System.GetUtcNow());
            Assert.Contains(status.LastRun!.Node, new[] { "node-1", "node-2" });
            Assert.NotNull(status.LastSuccessfulTime);
            Assert.NotNull(status.LastScheduleTime);
            Assert.Equal(["True", "True"], status.Conditions!.Select(c => c.Status));
            var slots = observation.History.Select(r => r.Slot).ToList();
            Assert.Equal(slots.Count, slots.Distinct().Count());
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            service.Dispose();
        }
    }
}
