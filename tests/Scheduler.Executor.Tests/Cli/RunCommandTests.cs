using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;

namespace Dtask.Executor.Tests.Cli;

public sealed partial class RunCommandTests(ConsulFixture consul)
{
    private const int Processes = 20;

    [Fact]
    public async Task Twenty_concurrent_dtask_run_processes_run_the_command_once_per_period()
    {
        var prefix = TestKvPrefix.New("dtask-test/");
        var task = "ops/race-" + Guid.NewGuid().ToString("N")[..8];
        var file = Path.Combine(Path.GetTempPath(), "dtask-race-" + Guid.NewGuid().ToString("N"));
        try
        {
            var exits = await Task.WhenAll(Enumerable.Range(0, Processes).Select(i => DtaskProcess.RunAsync(
                "run", "--task", task, "--period", "60", "--node", $"node-{i}", "--prefix", prefix, "--consul", consul.Agent.Address.ToString(),
                "--", "sh", "-c", $"echo \"$DTASK_SLOT $DTASK_NODE\" >> {file}")));

            var lines = File.ReadAllLines(file);
            var ranPerSlot = lines.GroupBy(l => l.Split(' ')[0]).ToDictionary(g => g.Key, g => g.Count());
            var losers = exits.Where(e => e.Error.Contains("not running it here", StringComparison.Ordinal)).ToList();
            var skipped = exits.Where(e => e.Error.Contains("recorded as skipped", StringComparison.Ordinal)).ToList();
            TestContext.Current.TestOutputHelper?.WriteLine($"slots: {string.Join(", ", ranPerSlot.Select(p => $"{p.Key}×{p.Value}"))}; {losers.Count} saw it taken, {skipped.Count} skipped");

            Assert.All(exits, e => Assert.True(e.ExitCode == 0, $"exit {e.ExitCode}: {e.Error}"));
            Assert.All(ranPerSlot, p => Assert.Equal(1, p.Value)); // exactly one run per slot
            // Every process either ran the command, or said which node had it.
            Assert.Equal(Processes, lines.Length + losers.Count + skipped.Count);
            Assert.All(losers, e => Assert.Matches(NodeMention(), e.Error));
            var slotsSeen = exits.SelectMany(e => SlotMention().Matches(e.Error).Select(m => m.Groups[1].Value)).ToHashSet();
            Assert.Subset(ranPerSlot.Keys.ToHashSet(), slotsSeen.Except(skipped.SelectMany(e => SlotMention().Matches(e.Error).Select(m => m.Groups[1].Value))).ToHashSet());
            if (ranPerSlot.Count == 1)
            {
                // One slot ran: every other process saw it taken, or, when its period began while that run still went on
                // (the processes started across a period's boundary), recorded its own slot skipped, naming the run.
                Assert.Equal(Processes - 1 - skipped.Count, losers.Count);
                Assert.All(skipped, e => Assert.Contains($"slot {ranPerSlot.Keys.Single()} is still running", e.Error, StringComparison.Ordinal));
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_killed_dtask_run_takes_its_command_down_within_the_grace()
    {
        var prefix = TestKvPrefix.New("dtask-test/");
        var task = "ops/killed-" + Guid.NewGuid().ToString("N")[..8];
        var folder = Directory.CreateTempSubdirectory("dtask-run-killed-").FullName;
        var witness = Path.Combine(folder, "witness");
        var pids = Path.Combine(folder, "tree.pid");
        using var run = DtaskProcess.Start("run", "--task", task, "--period", "3600", "--grace", "1s", "--prefix", prefix,
            "--consul", consul.Agent.Address.ToString(), "--", "sh", "-c",
            $"echo start >> {witness}; echo $$ >> {pids}; (trap '' TERM; sleep 45) & sleep 45 & wait; echo end >> {witness}");
        var output = run.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = run.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        try
        {
            Assert.True(await Eventually.TrueAsync(() => File.Exists(pids) && File.ReadAllText(pids).Trim().Length > 0, TimeSpan.FromSeconds(30)), "the command did not start");
            var leader = int.Parse(File.ReadAllText(pids).Trim(), CultureInfo.InvariantCulture);
            var marker = Daemon.DaemonWorld.MarkerOf(leader);
            Assert.False(string.IsNullOrEmpty(marker), "the command carries no watchdog marker");
            Assert.True(await Eventually.TrueAsync(() => Daemon.DaemonWorld.Contained(leader, marker!).Count >= 3, TimeSpan.FromSeconds(10)));

            Daemon.ExecutorProcess.Kill("KILL", run.Id);
            await run.WaitForExitAsync(TestContext.Current.CancellationToken);

            // The grace (1 s) and room for a busy machine.
            Assert.True(await Eventually.TrueAsync(() => Daemon.DaemonWorld.Contained(leader, marker!).Count == 0, TimeSpan.FromSeconds(6)),
                $"the command outlived dtask run: {string.Join(' ', Daemon.DaemonWorld.Contained(leader, marker!))}");
            Assert.Equal(["start"], File.ReadAllLines(witness));
        }
        finally
        {
            if (!run.HasExited)
            {
                run.Kill(entireProcessTree: true);
            }

            TestContext.Current.TestOutputHelper?.WriteLine(await error);
            _ = await output;
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task An_unreachable_consul_exits_69_without_a_stack_trace()
    {
        var exit = await DtaskProcess.RunAsync("run", "--task", "t", "--period", "5", "--consul", $"127.0.0.1:{ClosedPort().ToString(CultureInfo.InvariantCulture)}", "--", "true");
        Assert.Equal(69, exit.ExitCode);
        Assert.Contains("cannot use Consul at", exit.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", exit.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("run", "--task", "t", "--", "true")]
    [InlineData("run", "--task", "Bad_Name", "--period", "5", "--", "true")]
    [InlineData("run", "--task", "t", "--period", "0", "--", "true")]
    [InlineData("run", "--task", "t", "--period", "5", "--timeout", "soon", "--", "true")]
    [InlineData("run", "--task", "t", "--period", "five", "--", "true")]
    public async Task Usage_errors_exit_64(params string[] arguments)
    {
        var exit = await DtaskProcess.RunAsync(arguments);
        Assert.Equal(64, exit.ExitCode);
        Assert.DoesNotContain("   at ", exit.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_command_exit_code_is_dtask_runs_exit_code()
    {
        var prefix = TestKvPrefix.New("dtask-test/");
        var exit = await DtaskProcess.RunAsync("run", "--task", "t", "--period", "5", "--prefix", prefix, "--consul", consul.Agent.Address.ToString(), "--", "sh", "-c", "echo hi; exit 7");
        Assert.Equal(7, exit.ExitCode);
        Assert.Contains("hi", exit.Error, StringComparison.Ordinal);

        var missing = await DtaskProcess.RunAsync("run", "--task", "u", "--period", "5", "--prefix", prefix, "--consul", consul.Agent.Address.ToString(), "--", "no-such-program-dtask");
        Assert.Equal(127, missing.ExitCode);
        Assert.Contains("no such executable", missing.Error, StringComparison.Ordinal);
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [GeneratedRegex(@"on node node-\d+")]
    private static partial Regex NodeMention();

    [GeneratedRegex(@"slot (\d+)")]
    private static partial Regex SlotMention();
}
