using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;

namespace Dtask.Executor.Logging;

/// <summary>Writes each event to a text writer (stdout by default) through a formatter, one event at a time.</summary>
public sealed class TextLineSink : ILogEventSink
{
    private readonly ITextFormatter formatter;
    private readonly TextWriter output;
    private readonly Lock gate = new();

    /// <summary>Creates the sink.</summary>
    /// <param name="formatter">Formats an event, including its line end.</param>
    /// <param name="output">Where the text goes.</param>
    public TextLineSink(ITextFormatter formatter, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        ArgumentNullException.ThrowIfNull(output);
        this.formatter = formatter;
        this.output = output;
    }

    /// <inheritdoc />
    public void Emit(LogEvent logEvent)
    {
        lock (gate)
        {
            formatter.Format(logEvent, output);
            output.Flush();
        }
    }
}
