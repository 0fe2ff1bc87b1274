using System.Text;
using Dtask.Executor.Logging;
using Dtask.Executor.Tests.Support;
using Serilog;

namespace Dtask.Executor.Tests.Logging;

/// <summary>Writes through the sink to a real systemd-journald and reads the entries back with journalctl.</summary>
public class JournalSinkTests(JournaldFixture journald) : IClassFixture<JournaldFixture>
{
    private Serilog.Core.Logger JournalLogger() =>
        ExecutorLogging.Configure(new LoggingOptions(JournalSocketPath: journald.SocketPath), LogTarget.Journal)
            .MinimumLevel.Debug()
            .CreateLogger();

    [Fact]
    public async Task Entries_arrive_with_run_fields_priority_and_a_multi_line_message_intact()
    {
        if (journald.SkipReason is { } reason)
        {
            Assert.Skip(reason);
        }

        var task = Runs.UniqueTask("journal");
        var run = Runs.Backup(task);
        using (var logger = JournalLogger())
        {
            var log = logger.ForRun(run);
            log.Information("child started: {Command}", run.Command);
            log.Warning("line one\nline two\n  indented \"quoted\" \\ back");
            log.Error(new InvalidOperationException("lock gone"), "lost the lock after {Seconds} s", 12);
        }

        var entries = await journald.ReadAsync(task, 3);

        Assert.Equal(3, entries.Count);
        var started = entries.Single(e => e["MESSAGE"].StartsWith("child started", StringComparison.Ordinal));
        Assert.Equal("child started: /usr/bin/backup --all", started["MESSAGE"]);
        Assert.Equal("6", started["PRIORITY"]);
        Assert.Equal("dtask", started["SYSLOG_IDENTIFIER"]);
        Assert.Equal("ops", started["DTASK_NAMESPACE"]);
        Assert.Equal("1735732800", started["DTASK_SLOT"]);
        Assert.Equal("ops-backup-1735732800-1", started["DTASK_RUN_ID"]);
        Assert.Equal("node-a", started["DTASK_NODE"]);

        var multi = entries.Single(e => e["PRIORITY"] == "4");
        Assert.Equal("line one\nline two\n  indented \"quoted\" \\ back", multi["MESSAGE"]);

        var error = entries.Single(e => e["PRIORITY"] == "3");
        Assert.Equal("lost the lock after 12 s", error["MESSAGE"]);
        Assert.Equal("12", error["SECONDS"]);
        Assert.Contains("System.InvalidOperationException: lock gone", error["EXCEPTION"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Child_output_lines_arrive_with_the_run_fields_and_stderr_as_warnings()
    {
        if (journald.SkipReason is { } reason)
        {
            Assert.Skip(reason);
        }

        var task = Runs.UniqueTask("child");
        using (var logger = JournalLogger())
        {
            var forwarder = new ChildOutputForwarder(logger, Runs.Backup(task));
            using var stdout = new MemoryStream(Encoding.UTF8.GetBytes("copied 3 files\r\ndone ✓\n"));
            using var stderr = new MemoryStream(Encoding.UTF8.GetBytes("warning: disk 91% full"));
            await Task.WhenAll(
                forwarder.ForwardAsync(stdout, ChildOutputSource.Stdout, TestContext.Current.CancellationToken),
                forwarder.ForwardAsync(stderr, ChildOutputSource.Stderr, TestContext.Current.CancellationToken));
        }

        var entries = await journald.ReadAsync(task, 3);

        Assert.Equal(["copied 3 files", "done ✓"], entries.Where(e => e["CHILD_STREAM"] == "stdout").Select(e => e["MESSAGE"]));
        Assert.All(entries.Where(e => e["CHILD_STREAM"] == "stdout"), e => Assert.Equal("6", e["PRIORITY"]));
        var warning = Assert.Single(entries, e => e["CHILD_STREAM"] == "stderr");
        Assert.Equal("warning: disk 91% full", warning["MESSAGE"]);
        Assert.Equal("4", warning["PRIORITY"]);
        Assert.All(entries, e => Assert.Equal("ops-backup-1735732800-1", e["DTASK_RUN_ID"]));
    }

    [Fact]
    public async Task An_oversized_message_arrives_truncated_instead_of_being_lost()
    {
        if (journald.SkipReason is { } reason)
        {
            Assert.Skip(reason);
        }

        var task = Runs.UniqueTask("huge");
        using (var logger = JournalLogger())
        {
            logger.ForRun(Runs.Backup(task)).Information("{Text:l}", new string('x', 200_000) + "\nend");
        }

        var entry = Assert.Single(await journald.ReadAsync(task, 1));
        Assert.EndsWith(" [truncated]", entry["MESSAGE"], StringComparison.Ordinal);
        Assert.True(entry["MESSAGE"].Length > 40_000);
    }
}
