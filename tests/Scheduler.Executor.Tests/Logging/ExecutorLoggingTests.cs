using System.Text.Json;
using Dtask.Executor.Logging;
using Dtask.Executor.Tests.Support;
using Serilog.Events;

namespace Dtask.Executor.Tests.Logging;

public class ExecutorLoggingTests
{
    [Theory]
    [InlineData(LogTarget.Auto, true, false, LogTarget.Journal)]
    [InlineData(LogTarget.Auto, true, true, LogTarget.Console)]
    [InlineData(LogTarget.Auto, false, false, LogTarget.Console)]
    [InlineData(LogTarget.Json, true, false, LogTarget.Json)]
    [InlineData(LogTarget.Journal, false, true, LogTarget.Journal)]
    public void Auto_means_the_journal_only_when_journald_listens_and_nobody_watches_stdout(
        LogTarget requested, bool journalAccepts, bool terminal, LogTarget expected) =>
        Assert.Equal(expected, ExecutorLogging.Resolve(requested, journalAccepts, terminal));

    [Fact]
    public void Console_writes_plain_lines_with_the_run_fields()
    {
        using var output = new StringWriter();
        using (var logger = ExecutorLogging.Configure(new LoggingOptions(), LogTarget.Console, output).CreateLogger())
        {
            logger.ForRun(Runs.Backup()).Information("run {State}", "finished");
        }

        var line = output.ToString();
        Assert.Contains(" INF run finished ", line, StringComparison.Ordinal);
        Assert.Contains("\"Task\":\"backup\"", line, StringComparison.Ordinal);
        Assert.EndsWith(Environment.NewLine, line, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_writes_one_compact_object_a_line_with_the_rendered_message()
    {
        using var output = new StringWriter();
        using (var logger = ExecutorLogging.Configure(new LoggingOptions(), LogTarget.Json, output).CreateLogger())
        {
            logger.ForRun(Runs.Backup()).Warning("exit code {ExitCode}", 3);
            logger.Debug("below the minimum level");
        }

        var line = Assert.Single(output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        using var json = JsonDocument.Parse(line);
        Assert.Equal("exit code 3", json.RootElement.GetProperty("@m").GetString());
        Assert.Equal("Warning", json.RootElement.GetProperty("@l").GetString());
        Assert.Equal("backup", json.RootElement.GetProperty("Task").GetString());
        Assert.Equal(1735732800, json.RootElement.GetProperty("Slot").GetInt64());
    }

    [Fact]
    public void Options_come_from_the_environment()
    {
        var options = LoggingOptions.FromEnvironment(new Dictionary<string, string?>
        {
            ["DTASK_LOG_FORMAT"] = "json",
            ["DTASK_LOG_LEVEL"] = "debug",
        });

        Assert.Equal(LogTarget.Json, options.Target);
        Assert.Equal(LogEventLevel.Debug, options.MinimumLevel);
        Assert.Equal(LogTarget.Auto, LoggingOptions.FromEnvironment(new Dictionary<string, string?>()).Target);
        Assert.Throws<FormatException>(() => LoggingOptions.ParseTarget("syslog"));
    }

    [Fact]
    public void A_socket_file_nobody_listens_on_is_not_a_journal()
    {
        var path = Path.Combine(Path.GetTempPath(), "dtask-no-journal-" + Guid.NewGuid().ToString("N")[..8]);
        File.WriteAllText(path, "");
        try
        {
            Assert.False(JournalSocket.Accepts(path));
            Assert.False(JournalSocket.Accepts(path + ".missing"));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
