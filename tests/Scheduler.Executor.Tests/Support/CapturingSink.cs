using System.Collections.Concurrent;
using System.Globalization;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace Dtask.Executor.Tests.Support;

/// <summary>An in-memory Serilog sink: keeps every event.</summary>
public sealed class CapturingSink : ILogEventSink
{
    private readonly ConcurrentQueue<LogEvent> events = new();

    public IReadOnlyList<LogEvent> Events => [.. events];

    public void Emit(LogEvent logEvent) => events.Enqueue(logEvent);

    public ILogger CreateLogger() => new LoggerConfiguration().MinimumLevel.Verbose().WriteTo.Sink(this).CreateLogger();

    /// <summary>Everything a log reader could see: rendered messages, templates, property values, exceptions.</summary>
    public string AllText() => string.Join('\n', Events.Select(e =>
        e.RenderMessage(CultureInfo.InvariantCulture) + "\n" + e.MessageTemplate.Text + "\n"
        + string.Join('\n', e.Properties.Select(p => p.Key + "=" + p.Value.ToString(null, CultureInfo.InvariantCulture)))
        + "\n" + e.Exception));
}
