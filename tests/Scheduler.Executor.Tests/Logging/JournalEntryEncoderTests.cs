using System.Text;
using Dtask.Executor.Logging;
using Dtask.Executor.Tests.Support;
using Serilog.Events;

namespace Dtask.Executor.Tests.Logging;

public class JournalEntryEncoderTests
{
    private static LogEvent Capture(Action<Serilog.ILogger> log)
    {
        var sink = new CapturingSink();
        log(sink.CreateLogger());
        return Assert.Single(sink.Events);
    }

    [Fact]
    public void Run_fields_message_priority_and_identifier_are_written_as_name_equals_value()
    {
        var logEvent = Capture(l => l.ForRun(Runs.Backup()).Information("claimed slot {Slot} as {Attempt}", 1_735_732_800L, "first"));
        var bytes = new JournalEntryEncoder("dtask").Encode(logEvent);

        Assert.Contains("MESSAGE=claimed slot 1735732800 as first\n", Encoding.UTF8.GetString(bytes), StringComparison.Ordinal);
        var fields = JournalDatagram.Parse(bytes);
        Assert.Equal("6", fields["PRIORITY"]);
        Assert.Equal("dtask", fields["SYSLOG_IDENTIFIER"]);
        Assert.Equal("backup", fields["DTASK_TASK"]);
        Assert.Equal("ops", fields["DTASK_NAMESPACE"]);
        Assert.Equal("1735732800", fields["DTASK_SLOT"]);
        Assert.Equal("ops-backup-1735732800-1", fields["DTASK_RUN_ID"]);
        Assert.Equal("node-a", fields["DTASK_NODE"]);
        Assert.Equal("first", fields["ATTEMPT"]);
    }

    [Fact]
    public void A_value_with_a_newline_uses_the_binary_form_with_a_little_endian_length()
    {
        var logEvent = Capture(l => l.Information("{Text:l}", "a\nb"));
        var bytes = new JournalEntryEncoder("dtask").Encode(logEvent);

        byte[] expected = [.. "MESSAGE\n"u8, 3, 0, 0, 0, 0, 0, 0, 0, .. "a\nb\n"u8];
        Assert.Equal(expected, bytes[..expected.Length]);
        Assert.Equal("a\nb", JournalDatagram.Parse(bytes)["MESSAGE"]);
    }

    [Theory]
    [InlineData(LogEventLevel.Verbose, 7)]
    [InlineData(LogEventLevel.Debug, 7)]
    [InlineData(LogEventLevel.Information, 6)]
    [InlineData(LogEventLevel.Warning, 4)]
    [InlineData(LogEventLevel.Error, 3)]
    [InlineData(LogEventLevel.Fatal, 2)]
    public void Serilog_levels_map_to_syslog_priorities(LogEventLevel level, int priority) =>
        Assert.Equal(priority, JournalEntryEncoder.Priority(level));

    [Theory]
    [InlineData("ExitCode", "EXIT_CODE")]
    [InlineData("SourceContext", "SOURCE_CONTEXT")]
    [InlineData("exit_code", "EXIT_CODE")]
    [InlineData("_hidden", "HIDDEN")]
    [InlineData("9lives", "F_9LIVES")]
    [InlineData("a-b.c", "A_B_C")]
    [InlineData("HTTPStatus", "HTTPSTATUS")]
    public void Property_names_become_valid_journal_field_names(string property, string field) =>
        Assert.Equal(field, JournalEntryEncoder.FieldName(property));

    [Fact]
    public void An_oversized_message_is_cut_at_a_character_boundary_and_marked()
    {
        var huge = string.Concat(Enumerable.Repeat("é€", 30_000));
        var logEvent = Capture(l => l.Information("{Text:l}", huge));
        var fields = JournalDatagram.Parse(new JournalEntryEncoder("dtask").Encode(logEvent));

        var message = fields["MESSAGE"];
        Assert.True(Encoding.UTF8.GetByteCount(message) <= JournalEntryEncoder.MaxMessageBytes);
        Assert.EndsWith(" [truncated]", message, StringComparison.Ordinal);
        Assert.DoesNotContain('\uFFFD', message);
        Assert.StartsWith("é€é€", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Exception_text_goes_to_its_own_field()
    {
        var logEvent = Capture(l => l.Error(new InvalidOperationException("boom"), "renew failed"));
        var fields = JournalDatagram.Parse(new JournalEntryEncoder("dtask").Encode(logEvent));

        Assert.Equal("renew failed", fields["MESSAGE"]);
        Assert.Equal("3", fields["PRIORITY"]);
        Assert.StartsWith("System.InvalidOperationException: boom", fields["EXCEPTION"], StringComparison.Ordinal);
    }

    [Fact]
    public void Reserved_dtask_and_child_output_properties_do_not_become_custom_fields()
    {
        var logEvent = Capture(l => l
            .ForContext("Priority", "0")
            .ForContext("DtaskFence", "99")
            .ForContext("Labels", new[] { "a", "b" })
            .Information("{ChildOutput:l}", "a line"));
        var fields = JournalDatagram.Parse(new JournalEntryEncoder("dtask").Encode(logEvent));

        Assert.Equal("a line", fields["MESSAGE"]);
        Assert.Equal("6", fields["PRIORITY"]);
        Assert.False(fields.ContainsKey("CHILD_OUTPUT"));
        Assert.False(fields.ContainsKey("DTASK_FENCE"));
        Assert.False(fields.ContainsKey("LABELS"));
    }
}
