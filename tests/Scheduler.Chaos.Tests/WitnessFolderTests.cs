using System.Diagnostics;
using Dtask.Chaos.Evidence;
using Dtask.Chaos.Hosts;
using Dtask.Chaos.Workload;
using Dtask.Core.State;
using Dtask.Core.Model;
using Dtask.Testing;

namespace Dtask.Chaos.Tests;

/// <summary>The witness logs, one per host: the child's own script names its file from its network namespace.</summary>
public sealed class WitnessFolderTests
{
    [Fact(Timeout = 60_000)]
    public async Task A_child_writes_into_the_log_of_the_namespace_it_runs_in_and_the_logs_merge_by_host()
    {
        using var folder = new TempDirectory();
        var workload = new ChaosWorkload([new ChaosTask("t", 1, TimeSpan.Zero, ConcurrencyPolicy.Forbid, "test")], folder.Path, new KvLayout("dtask/"));
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(workload.ScriptOf(workload.Tasks[0]));
        foreach (var (name, value) in new Dictionary<string, string> { ["DTASK_TASK"] = "t", ["DTASK_SLOT"] = "1800000000", ["DTASK_NODE"] = "node-1", ["DTASK_FENCE"] = "7", ["DTASK_RUN_ID"] = "r1" })
        {
            start.Environment[name] = value;
        }

        using (var child = Process.Start(start)!)
        {
            await child.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.Equal(0, child.ExitCode);
        }

        var own = NodeNetwork.OwnNetInode();
        Assert.True(File.Exists(WitnessLog.FileOf(folder.Path, own)), string.Join(", ", Directory.GetFiles(folder.Path)));
        await File.WriteAllTextAsync(WitnessLog.FileOf(folder.Path, 12345), "t 1800000001 node-2 8 start 1800000001050000000 r2 200\n", TestContext.Current.CancellationToken);

        var (runs, unreadable) = WitnessLog.ReadFolder(folder.Path, new Dictionary<long, string> { [own] = "node-1" });

        Assert.Empty(unreadable);
        Assert.Equal(2, runs.Count);
        var mine = Assert.Single(runs, r => r.RunId == "r1");
        Assert.Equal(("node-1", "node-1", 7L), (mine.Host, mine.Node, mine.Fence));
        Assert.NotNull(mine.End);
        Assert.Equal("net:12345", Assert.Single(runs, r => r.RunId == "r2").Host);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_child_writes_its_trigger_and_the_status_it_exits_with()
    {
        using var folder = new TempDirectory();
        var task = new ChaosTask("t", 1, TimeSpan.Zero, ConcurrencyPolicy.Forbid, "test", RetryLimit: 1);
        var workload = new ChaosWorkload([task], folder.Path, new KvLayout("dtask/"));
        var exits = new List<(int Pid, int Code)>();
        for (var i = 0; i < 4; i++)
        {
            var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(workload.ScriptOf(task));
            foreach (var (name, value) in new Dictionary<string, string> { ["DTASK_TASK"] = "t", ["DTASK_SLOT"] = "1800000000", ["DTASK_NODE"] = "node-1", ["DTASK_FENCE"] = "7", ["DTASK_RUN_ID"] = "r1", ["DTASK_TRIGGER"] = "req" + i })
            {
                start.Environment[name] = value;
            }

            using var child = Process.Start(start)!;
            await child.WaitForExitAsync(TestContext.Current.CancellationToken);
            exits.Add((child.Id, child.ExitCode));
        }

        var (runs, unreadable) = WitnessLog.ReadFolder(folder.Path, new Dictionary<long, string> { [NodeNetwork.OwnNetInode()] = "node-1" });

        Assert.Empty(unreadable);
        Assert.Equal(4, runs.Count);
        foreach (var (pid, code) in exits)
        {
            var run = Assert.Single(runs, r => r.Pid == pid);
            Assert.Equal(pid % 2, code); // A task with retries fails on an odd pid.
            Assert.Equal(code, run.Status);
            Assert.Equal(code != 0, run.FailedByItself);
            Assert.StartsWith("req", run.Trigger, StringComparison.Ordinal);
        }
    }
}
