using System.Globalization;
using Dtask.Executor.Logging;
using Dtask.Executor.Processes;
using Dtask.Executor.Tests.Cli;
using Dtask.Executor.Tests.Support;
using Dtask.Testing;

namespace Dtask.Executor.Tests.Processes;

/// <summary>A real <c>dtask __watchdog</c> process guarding children started by a <see cref="ChildRunner"/> of this process.</summary>
public sealed class ChildWatchdogTests : IDisposable
{
    private static readonly RunIdentity Identity = new("ops", "guarded", 1_735_732_800, "node-a", "1735732800-abc", 7);
    private readonly string folder = Directory.CreateTempSubdirectory("dtask-watchdog-").FullName;

    private static ChildWatchdog StartWatchdog(TimeSpan grace) =>
        ChildWatchdog.Start(grace, [DtaskBuild.DotnetHost(), "exec", DtaskProcess.DllPath]);

    private static ChildOutputForwarder Output()
    {
        var sink = new CapturingSink();
        return new ChildOutputForwarder(sink.CreateLogger(), new RunContext("ops", "guarded", "node-a", Identity.Slot, Identity.RunId, "test", TimeSpan.Zero));
    }

    private string PathOf(string name) => Path.Combine(folder, name);

    private int[] Pids(string name) =>
        File.Exists(PathOf(name)) ? [.. File.ReadAllLines(PathOf(name)).Select(l => int.Parse(l.Trim(), CultureInfo.InvariantCulture))] : [];

    [Fact]
    public async Task When_the_owner_is_gone_its_groups_and_the_marked_processes_that_left_them_are_stopped()
    {
        using var watchdog = StartWatchdog(TimeSpan.FromSeconds(1));
        // The main process, a grandchild in its group that ignores SIGTERM, and one that left the group (setsid).
        var script = $"echo $$ >> {PathOf("tree.pid")}; (trap '' TERM; sleep 60) & echo $! >> {PathOf("tree.pid")}; " +
                     $"setsid sh -c 'echo $$ >> {PathOf("tree.pid")}; sleep 60' & sleep 60; echo end >> {PathOf("witness")}";
        var runner = new ChildRunner(new ChildRunnerOptions { TerminationGrace = TimeSpan.FromSeconds(30), Watchdog = watchdog });
        var run = runner.RunAsync(ChildCommand.Shell(script), Identity, Output());
        Assert.True(await Eventually.TrueAsync(() => Pids("tree.pid").Length == 3, TimeSpan.FromSeconds(10)));
        var tree = Pids("tree.pid");
        Assert.NotEqual(PosixProcessGroups.GroupOf(tree[0]), PosixProcessGroups.GroupOf(tree[2])); // left the group

        watchdog.Abandon(TimeSpan.FromSeconds(10));

        Assert.True(watchdog.HasExited, "the watchdog did not leave after stopping the children");
        Assert.All(tree, pid => Assert.False(IsAlive(pid), $"process {pid} outlived the owner"));
        var outcome = await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal(143, outcome.ExitCode);
        Assert.False(File.Exists(PathOf("witness")));
    }

    [Fact]
    public async Task An_expired_lease_stops_the_children_and_later_ones_run_under_a_new_lease()
    {
        using var watchdog = StartWatchdog(TimeSpan.FromSeconds(1));
        var runner = new ChildRunner(new ChildRunnerOptions { Watchdog = watchdog });
        watchdog.Lease(TimeSpan.FromSeconds(60));
        var run = runner.RunAsync(ChildCommand.Shell($"echo $$ >> {PathOf("first.pid")}; exec sleep 60"), Identity, Output());
        Assert.True(await Eventually.TrueAsync(() => Pids("first.pid").Length == 1, TimeSpan.FromSeconds(10)));

        watchdog.Lease(TimeSpan.FromMilliseconds(300)); // the owner's renewals stop here
        var outcome = await run.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
        Assert.Equal(143, outcome.ExitCode);
        Assert.Null(outcome.StoppedReason); // the watchdog stopped it, not the runner

        watchdog.Lease(TimeSpan.FromSeconds(60));
        var later = await runner.RunAsync(ChildCommand.Shell("sleep 1; echo ran"), Identity, Output());
        Assert.True(later.Succeeded, later.Reason);
        Assert.False(watchdog.HasExited);
    }

    [Fact]
    public async Task A_watchdog_killed_while_the_owner_lives_is_started_again_and_still_guards_the_running_children()
    {
        using var watchdog = StartWatchdog(TimeSpan.FromSeconds(1));
        var restarted = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        watchdog.Restarted += what => restarted.TrySetResult(what);
        watchdog.Lease(TimeSpan.FromSeconds(60));
        var runner = new ChildRunner(new ChildRunnerOptions { TerminationGrace = TimeSpan.FromSeconds(30), Watchdog = watchdog });
        var run = runner.RunAsync(ChildCommand.Shell($"echo $$ >> {PathOf("child.pid")}; sleep 60; echo end >> {PathOf("witness")}"), Identity, Output());
        Assert.True(await Eventually.TrueAsync(() => Pids("child.pid").Length == 1, TimeSpan.FromSeconds(10)));
        var first = watchdog.ProcessId ?? throw new InvalidOperationException("no watchdog process");

        ExecutorProcessKill(first);

        var what = await restarted.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Contains("started again", what, StringComparison.Ordinal);
        Assert.True(await Eventually.TrueAsync(() => watchdog.ProcessId is { } pid && pid != first, TimeSpan.FromSeconds(10)));
        Assert.True(IsAlive(Pids("child.pid")[0]), "the restarted watchdog stopped a child under a live lease");

        watchdog.Abandon(TimeSpan.FromSeconds(10)); // the owner dies: the new watchdog knows the running group

        Assert.False(IsAlive(Pids("child.pid")[0]), "the child outlived its owner after the watchdog was restarted");
        var outcome = await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal(143, outcome.ExitCode);
        Assert.False(File.Exists(PathOf("witness")));
    }

    [Fact]
    public async Task An_orderly_exit_stops_nothing()
    {
        using var watchdog = StartWatchdog(TimeSpan.FromSeconds(1));
        watchdog.Lease(TimeSpan.FromSeconds(60));
        var runner = new ChildRunner(new ChildRunnerOptions { Watchdog = watchdog });
        var outcome = await runner.RunAsync(ChildCommand.Shell(
            $"setsid sh -c 'echo $$ >> {PathOf("left.pid")}; exec sleep 60' & while [ ! -s {PathOf("left.pid")} ]; do sleep 0.05; done"), Identity, Output());
        Assert.Equal(0, outcome.ExitCode);
        Assert.True(await Eventually.TrueAsync(() => Pids("left.pid").Length == 1, TimeSpan.FromSeconds(10)));

        watchdog.Dispose();

        Assert.True(watchdog.HasExited);
        var left = Pids("left.pid")[0];
        Assert.True(IsAlive(left), "an orderly exit stopped a process");
        ExecutorProcessKill(left);
    }

    public void Dispose()
    {
        foreach (var file in Directory.EnumerateFiles(folder, "*.pid"))
        {
            foreach (var line in File.ReadAllLines(file))
            {
                if (int.TryParse(line.Trim(), CultureInfo.InvariantCulture, out var pid) && IsAlive(pid))
                {
                    ExecutorProcessKill(pid);
                }
            }
        }

        Directory.Delete(folder, recursive: true);
    }

    private static void ExecutorProcessKill(int pid) => Daemon.ExecutorProcess.Kill("KILL", pid);

    private static bool IsAlive(int pid) => Daemon.DaemonWorld.IsAlive(pid);
}
