using System.Globalization;
using Dtask.Core.State;
using Dtask.Executor.Logging;
using Dtask.Executor.Processes;
using Dtask.Executor.Tests.Support;
using Serilog.Events;

namespace Dtask.Executor.Tests.Processes;

/// <summary>The runner as it starts children here (posix_spawn); <see cref="SetsidChildRunnerTests"/> runs every case again through setsid.</summary>
public class ChildRunnerTests
{
    /// <summary>How the children of these cases are started.</summary>
    protected virtual ChildStartMethod Method => ChildStartMethod.Auto;

    private ChildRunner Runner(TimeSpan? grace = null) =>
        new(new ChildRunnerOptions { StartMethod = Method, TerminationGrace = grace ?? new ChildRunnerOptions().TerminationGrace });

    private static readonly RunIdentity Identity = new("ops", "backup", 1_735_732_800, "node-a", "1735732800-abc", 4242);

    private static (ChildOutputForwarder Forwarder, CapturingSink Sink) Output()
    {
        var sink = new CapturingSink();
        var context = new RunContext("ops", "backup", "node-a", Identity.Slot, Identity.RunId, "test", TimeSpan.Zero);
        return (new ChildOutputForwarder(sink.CreateLogger(), context), sink);
    }

    [Fact]
    public async Task The_child_gets_the_run_identity_its_env_and_its_working_directory()
    {
        var dir = Directory.CreateTempSubdirectory("dtask-child-").FullName;
        try
        {
            var (forwarder, _) = Output();
            var command = ChildCommand.Shell("echo \"$DTASK_TASK $DTASK_NAMESPACE $DTASK_SLOT $DTASK_NODE $DTASK_RUN_ID $DTASK_FENCE $GREETING\"; pwd") with
            {
                Environment = new Dictionary<string, string> { ["GREETING"] = "hello world" },
                WorkingDirectory = dir,
            };

            var outcome = await Runner().RunAsync(command, Identity, forwarder);

            Assert.True(outcome.Succeeded, outcome.Reason);
            Assert.Equal($"backup ops 1735732800 node-a 1735732800-abc 4242 hello world\n{dir}\n", outcome.OutputTail);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    public static TheoryData<string, int, RunState, int?> ExitRows => new()
    {
        { "exit 0", 0, RunState.Succeeded, null },
        { "exit 3", 3, RunState.Failed, null },
        { "kill -TERM $$", 143, RunState.Failed, 15 },
        { "kill -KILL $$", 137, RunState.Failed, 9 },
    };

    [Theory]
    [MemberData(nameof(ExitRows))]
    public async Task Exit_codes_and_signals_are_reported_like_a_shell(string script, int exitCode, RunState state, int? signal)
    {
        var (forwarder, _) = Output();
        var outcome = await Runner().RunAsync(ChildCommand.Shell(script), Identity, forwarder);
        Assert.Equal(exitCode, outcome.ExitCode);
        Assert.Equal(state, outcome.State);
        Assert.Equal(signal, outcome.Signal);
    }

    [Fact]
    public async Task Argv_runs_without_a_shell()
    {
        var (forwarder, _) = Output();
        var outcome = await Runner().RunAsync(ChildCommand.Exec(["echo", "$HOME", "a b"]), Identity, forwarder);
        Assert.Equal("$HOME a b\n", outcome.OutputTail);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task A_missing_program_or_working_directory_is_a_failed_outcome_with_a_reason()
    {
        var (forwarder, _) = Output();
        var missing = await Runner().RunAsync(ChildCommand.Exec(["no-such-program-dtask"]), Identity, forwarder);
        Assert.True(missing.NeverStarted);
        Assert.Equal(RunState.Failed, missing.State);
        Assert.Contains("no such executable: 'no-such-program-dtask'", missing.Reason, StringComparison.Ordinal);

        var noDir = await Runner().RunAsync(ChildCommand.Exec(["true"]) with { WorkingDirectory = "/nonexistent/dtask" }, Identity, forwarder);
        Assert.Contains("working directory '/nonexistent/dtask' does not exist", noDir.Reason, StringComparison.Ordinal);

        var plainFile = Path.GetTempFileName();
        try
        {
            File.SetUnixFileMode(plainFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var notExecutable = await Runner().RunAsync(ChildCommand.Exec([plainFile]), Identity, forwarder);
            Assert.Contains("is not executable", notExecutable.Reason, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(plainFile);
        }
    }

    [Fact]
    public async Task The_child_leads_its_own_process_group()
    {
        var (forwarder, _) = Output();
        var outcome = await Runner().RunAsync(ChildCommand.Shell("ps -o pid=,pgid= -p $$"), Identity, forwarder);
        var numbers = outcome.OutputTail.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(numbers[0], numbers[1]);
        Assert.Equal(outcome.ProcessGroupId.ToString(), numbers[0]);
    }

    [Fact]
    public async Task On_timeout_the_whole_tree_is_gone_even_grandchildren_that_ignore_SIGTERM()
    {
        var (forwarder, _) = Output();
        var runner = Runner(TimeSpan.FromMilliseconds(500));
        var command = ChildCommand.Shell("trap \"\" TERM; sleep 300 & sleep 300 & echo started; wait") with { Timeout = TimeSpan.FromSeconds(2) };
        Task<int>? membersWhileRunning = null;
        var outcome = await runner.RunAsync(command, Identity, forwarder, started: start =>
            membersWhileRunning = Task.Run(async () =>
            {
                await Eventually.TrueAsync(() => PosixProcessGroups.Members(start.ProcessGroupId).Count >= 3, TimeSpan.FromSeconds(2));
                return PosixProcessGroups.Members(start.ProcessGroupId).Count;
            }));

        Assert.True(outcome.TimedOut);
        Assert.Equal(RunState.TimedOut, outcome.State);
        Assert.Equal(137, outcome.ExitCode); // SIGTERM was ignored: SIGKILL after the grace period.
        Assert.NotNull(membersWhileRunning);
        Assert.Equal(3, await membersWhileRunning); // sampled while the tree ran (the sample is awaited, not raced)
        Assert.Empty(PosixProcessGroups.Members(outcome.ProcessGroupId!.Value));
        Assert.True(outcome.Duration < TimeSpan.FromSeconds(5), outcome.Duration.ToString());
    }

    [Fact]
    public async Task The_last_check_before_the_fork_keeps_the_child_from_starting_and_says_why()
    {
        var (forwarder, _) = Output();
        var marker = Path.Combine(Path.GetTempPath(), "dtask-last-check-" + Guid.NewGuid().ToString("N"));
        var asked = 0;
        var outcome = await Runner().RunAsync(ChildCommand.Shell($"touch {marker}"), Identity, forwarder, new StopRequest(), null,
            () => Interlocked.Increment(ref asked) == 1 ? StopReason.SessionLost("the lease ran out before the child started") : null);

        Assert.Equal(1, asked);
        Assert.Null(outcome.StartedAt);
        Assert.Equal("session-lost: the lease ran out before the child started", outcome.StoppedReason?.Text);
        Assert.False(File.Exists(marker), "the child ran");
    }

    [Fact]
    public async Task A_stop_request_stops_the_group_and_records_its_reason()
    {
        var (forwarder, _) = Output();
        using var stop = new StopRequest();
        var outcome = await Runner().RunAsync(ChildCommand.Shell("sleep 300 & wait"), Identity, forwarder, stop,
            start => _ = Task.Run(() => stop.Stop(StopReason.LockLost("test"))));

        Assert.Equal("lock-lost: test", outcome.StoppedReason?.Text);
        Assert.Equal(RunState.Lost, outcome.State);
        Assert.Equal(143, outcome.ExitCode);
        Assert.Empty(PosixProcessGroups.Members(outcome.ProcessGroupId!.Value));
    }

    [Fact]
    public async Task Leftover_background_processes_end_with_the_main_process()
    {
        var (forwarder, _) = Output();
        var outcome = await Runner().RunAsync(ChildCommand.Shell("sleep 300 & echo done"), Identity, forwarder);
        Assert.True(outcome.Succeeded);
        Assert.Empty(PosixProcessGroups.Members(outcome.ProcessGroupId!.Value));
    }

    [Fact]
    public async Task Output_lines_are_forwarded_and_the_tail_kept()
    {
        var (forwarder, sink) = Output();
        var script = "i=0; while [ $i -lt 600 ]; do echo \"line $i\"; i=$((i+1)); done; echo oops >&2";
        var outcome = await Runner().RunAsync(ChildCommand.Shell(script), Identity, forwarder);

        var lines = sink.Events.Where(e => e.Properties.ContainsKey(LogProperties.ChildOutput)).ToList();
        Assert.Equal(601, lines.Count);
        Assert.Contains(lines, e => e.Level == LogEventLevel.Warning && e.RenderMessage(CultureInfo.InvariantCulture) == "oops");
        Assert.All(lines, e => Assert.Equal("\"1735732800-abc\"", e.Properties[LogProperties.RunId].ToString()));
        Assert.True(outcome.OutputTail.Length <= OutputTail.DefaultCapacity);
        Assert.Contains("line 599\n", outcome.OutputTail, StringComparison.Ordinal);
        Assert.DoesNotContain("line 0\n", outcome.OutputTail, StringComparison.Ordinal);
    }
}

/// <summary>Every runner case through the setsid start, the one used where the runtime reaps every child (pid 1).</summary>
public sealed class SetsidChildRunnerTests : ChildRunnerTests
{
    /// <inheritdoc />
    protected override ChildStartMethod Method => ChildStartMethod.Setsid;
}
