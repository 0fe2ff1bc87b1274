namespace Dtask.Cli.Tests;

public sealed class ScheduleCommandTests
{
    private const string BerlinBackup = """
        apiVersion: dtask.dev/v1alpha1
        kind: ScheduledTask
        metadata:
          name: backup
          namespace: ops
        spec:
          schedule: "30 2 * * *"
          timeZone: Europe/Berlin
          command: ["echo", "hi"]
        """;

    [Fact]
    public void Shows_the_next_slots_in_utc_and_in_the_zone_across_fall_back()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("backup.yaml", BerlinBackup);

        var run = CliRun.Of("schedule", "-f", file, "--from", "2026-10-24T00:00:00Z", "--count", "3");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("", run.Error);
        Assert.Equal(
            [
                "        task: ops/backup",
                "    schedule: 30 2 * * *",
                "   time zone: Europe/Berlin",
                "  next slots after 2026-10-24T00:00:00Z:",
                "    2026-10-24T00:30:00Z  2026-10-24 02:30:00 CEST  (slot 1792801800)",
                "    2026-10-25T00:30:00Z  2026-10-25 02:30:00 CEST  (slot 1792888200)",
                "    2026-10-26T01:30:00Z  2026-10-26 02:30:00 CET  (slot 1792978200)",
            ],
            run.OutputLines);
    }

    [Fact]
    public void Resolves_h_and_shows_the_jittered_fire_time()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("h.yaml", BerlinBackup
            .Replace("\"30 2 * * *\"", "\"H 2 * * *\"\n  jitter: 5m", StringComparison.Ordinal)
            .Replace("timeZone: Europe/Berlin", "timeZone: America/New_York", StringComparison.Ordinal));

        var run = CliRun.Of("schedule", "-f", file, "--from", "2026-03-07T12:00:00Z", "-n", "2");

        Assert.Equal(0, run.ExitCode);
        var lines = run.OutputLines;
        Assert.Equal("    schedule: H 2 * * *", lines[1]);
        Assert.Matches(@"^    resolved: \d{1,2} 2 \* \* \*$", lines[2]);
        Assert.Equal("      jitter: 5m", lines[4]);
        var minute = int.Parse(lines[2].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);

        // 2026-03-08 is spring forward in New York: 02:MM does not exist and runs at 03:00 EDT.
        Assert.Matches($@"^    2026-03-08T07:00:00Z  2026-03-08 03:00:00 EDT  \(slot 1772953200\)  fires 2026-03-08T07:0[0-4]:\d\d\.\d{{3}}Z$", lines[6]);
        Assert.Matches($@"^    2026-03-09T06:{minute:00}:00Z  2026-03-09 02:{minute:00}:00 EDT  \(slot \d+\)  fires ", lines[7]);
        Assert.Equal(run.Output, CliRun.Of("schedule", "-f", file, "--from", "2026-03-07T12:00:00Z", "-n", "2").Output);
    }

    [Fact]
    public void Every_is_shown_as_its_epoch_aligned_slots()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("sync.yaml", BerlinBackup.Replace("schedule: \"30 2 * * *\"", "every: 90s", StringComparison.Ordinal));

        var run = CliRun.Of("schedule", "-f", file, "--from", "2026-01-01T00:00:01Z", "--count", "2");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("    schedule: every 1m30s", run.OutputLines[1]);
        Assert.Equal("    2026-01-01T00:01:30Z  2026-01-01 01:01:30 CET  (slot 1767225690)", run.OutputLines[4]);
        Assert.Equal("    2026-01-01T00:03:00Z  2026-01-01 01:03:00 CET  (slot 1767225780)", run.OutputLines[5]);
    }

    [Fact]
    public void An_invalid_document_prints_its_errors_and_exits_1()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("bad.yaml", BerlinBackup.Replace("30 2 * * *", "30 25 * * *", StringComparison.Ordinal));

        var run = CliRun.Of("schedule", "-f", file, "--from", "2026-01-01T00:00:00Z");

        Assert.Equal(1, run.ExitCode);
        Assert.Equal([$"{file}[0] ops/backup: spec.schedule: field 2 (hour) '25' is out of range 0-23"], run.OutputLines);
    }

    [Theory]
    [InlineData("--from", "yesterday", "dtask schedule: --from 'yesterday' is not an ISO-8601 instant; write one such as 2026-11-28T00:00:00Z")]
    [InlineData("--count", "0", "dtask schedule: --count 0 must be between 1 and 10000")]
    public void Bad_options_are_usage_errors_without_a_stack_trace(string option, string value, string message)
    {
        using var dir = new TempDirectory();
        var file = dir.Write("backup.yaml", BerlinBackup);

        var run = CliRun.Of("schedule", "-f", file, option, value);

        Assert.Equal(2, run.ExitCode);
        Assert.Equal(message + "\n", run.Error);
        Assert.DoesNotContain(" at ", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_file_is_a_usage_error()
    {
        var run = CliRun.Of("schedule", "-f", "/nonexistent/tasks.yaml");

        Assert.Equal(2, run.ExitCode);
        Assert.Equal("dtask schedule: /nonexistent/tasks.yaml: no such file or directory\n", run.Error);
    }

    [Fact]
    public void A_count_that_is_not_a_number_is_a_usage_error()
    {
        var run = CliRun.Of("schedule", "-f", "x.yaml", "--count", "many");

        Assert.Equal(2, run.ExitCode);
        Assert.DoesNotContain("Exception", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Previews_the_examples_directory()
    {
        var run = CliRun.Of("schedule", "-f", RepositoryRoot.Combine("examples"), "--from", "2026-01-01T00:00:00Z", "--count", "1");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains(run.OutputLines, l => l.StartsWith("        task: ", StringComparison.Ordinal));
        Assert.All(run.OutputLines.Where(l => l.StartsWith("    2", StringComparison.Ordinal)), l => Assert.Matches(@"\(slot \d+\)", l));
    }
}
