using System.Globalization;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;
using Serilog.Formatting.Display;

namespace Dtask.Executor.Logging;

/// <summary>Where the executor's log goes.</summary>
public enum LogTarget
{
    /// <summary>The journal when journald listens and stdout is not a terminal; plain lines on stdout otherwise.</summary>
    Auto,

    /// <summary>Native entries on journald's socket.</summary>
    Journal,

    /// <summary>Plain text lines on stdout.</summary>
    Console,

    /// <summary>Compact JSON (one object a line, rendered message) on stdout.</summary>
    Json,
}

/// <summary>The executor's logging settings.</summary>
/// <param name="Target">Where logs go (<c>DTASK_LOG_FORMAT</c>: <c>auto</c> | <c>journal</c> | <c>console</c> | <c>json</c>).</param>
/// <param name="MinimumLevel">The lowest level written (<c>DTASK_LOG_LEVEL</c>: <c>debug</c>, <c>information</c>, ...).</param>
/// <param name="JournalSocketPath">journald's native socket.</param>
/// <param name="SyslogIdentifier">The journal's <c>SYSLOG_IDENTIFIER</c>.</param>
public sealed record LoggingOptions(
    LogTarget Target = LogTarget.Auto,
    LogEventLevel MinimumLevel = LogEventLevel.Information,
    string JournalSocketPath = JournalSink.DefaultSocketPath,
    string SyslogIdentifier = JournalSink.DefaultSyslogIdentifier)
{
    /// <summary>The variable naming the target.</summary>
    public const string TargetVariable = "DTASK_LOG_FORMAT";

    /// <summary>The variable naming the minimum level.</summary>
    public const string LevelVariable = "DTASK_LOG_LEVEL";

    /// <summary>Reads <c>DTASK_LOG_FORMAT</c> and <c>DTASK_LOG_LEVEL</c>.</summary>
    /// <param name="environment">The environment variables.</param>
    /// <returns>The options.</returns>
    /// <exception cref="FormatException">A value is not understood.</exception>
    public static LoggingOptions FromEnvironment(IReadOnlyDictionary<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var options = new LoggingOptions();
        if (environment.TryGetValue(TargetVariable, out var target) && !string.IsNullOrWhiteSpace(target))
        {
            options = options with { Target = ParseTarget(target) };
        }

        if (environment.TryGetValue(LevelVariable, out var level) && !string.IsNullOrWhiteSpace(level))
        {
            options = options with { MinimumLevel = ParseLevel(level) };
        }

        return options;
    }

    /// <summary>Parses <c>auto</c>, <c>journal</c>, <c>console</c> (or <c>plain</c>), <c>json</c>.</summary>
    /// <param name="text">The name.</param>
    /// <returns>The target.</returns>
    /// <exception cref="FormatException">Unknown name.</exception>
    public static LogTarget ParseTarget(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Trim().ToUpperInvariant() switch
        {
            "AUTO" => LogTarget.Auto,
            "JOURNAL" or "JOURNALD" => LogTarget.Journal,
            "CONSOLE" or "PLAIN" or "TEXT" => LogTarget.Console,
            "JSON" => LogTarget.Json,
            _ => throw new FormatException($"'{text}' is not a log format (auto, journal, console, json)"),
        };
    }

    /// <summary>Parses a level: <c>verbose</c>, <c>debug</c>, <c>information</c>/<c>info</c>, <c>warning</c>/<c>warn</c>, <c>error</c>, <c>fatal</c>.</summary>
    /// <param name="text">The name.</param>
    /// <returns>The level.</returns>
    /// <exception cref="FormatException">Unknown name.</exception>
    public static LogEventLevel ParseLevel(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Trim().ToUpperInvariant() switch
        {
            "VERBOSE" or "TRACE" => LogEventLevel.Verbose,
            "DEBUG" => LogEventLevel.Debug,
            "INFORMATION" or "INFO" => LogEventLevel.Information,
            "WARNING" or "WARN" => LogEventLevel.Warning,
            "ERROR" => LogEventLevel.Error,
            "FATAL" => LogEventLevel.Fatal,
            _ => throw new FormatException($"'{text}' is not a log level"),
        };
    }
}

/// <summary>Builds the executor's Serilog configuration for the chosen <see cref="LogTarget"/>.</summary>
public static class ExecutorLogging
{
    /// <summary>The plain-text line format.</summary>
    public const string PlainTemplate =
        "{Timestamp:yyyy-MM-ddTHH:mm:ss.fffzzz} {Level:u3} {Message:lj} {Properties:j}{NewLine}{Exception}";

    /// <summary>Decides what <see cref="LogTarget.Auto"/> means here.</summary>
    /// <param name="requested">The requested target.</param>
    /// <param name="journalAccepts">Whether journald receives on its socket (<see cref="JournalSocket.Accepts"/>).</param>
    /// <param name="stdoutIsTerminal">Whether stdout is a terminal (someone is watching it).</param>
    /// <returns>A concrete target: never <see cref="LogTarget.Auto"/>.</returns>
    public static LogTarget Resolve(LogTarget requested, bool journalAccepts, bool stdoutIsTerminal) => requested switch
    {
        LogTarget.Auto when journalAccepts && !stdoutIsTerminal => LogTarget.Journal,
        LogTarget.Auto => LogTarget.Console,
        _ => requested,
    };

    /// <summary>
    /// The logger configuration for the options: <see cref="LogTarget.Auto"/> is resolved by probing the journal
    /// socket and checking whether stdout is a terminal.
    /// </summary>
    /// <param name="options">The settings.</param>
    /// <param name="output">Where console and JSON lines go; stdout when null.</param>
    /// <returns>The configuration, ready for enrichment or <c>CreateLogger()</c>.</returns>
    public static LoggerConfiguration Configure(LoggingOptions options, TextWriter? output = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var target = Resolve(
            options.Target,
            options.Target == LogTarget.Auto && JournalSocket.Accepts(options.JournalSocketPath),
            !System.Console.IsOutputRedirected);
        return Configure(options, target, output);
    }

    /// <summary>The logger configuration for a concrete target.</summary>
    /// <param name="options">The settings.</param>
    /// <param name="target">The target (not <see cref="LogTarget.Auto"/>).</param>
    /// <param name="output">Where console and JSON lines go; stdout when null.</param>
    /// <returns>The configuration.</returns>
    public static LoggerConfiguration Configure(LoggingOptions options, LogTarget target, TextWriter? output = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var configuration = new LoggerConfiguration().MinimumLevel.Is(options.MinimumLevel);
        var writer = output ?? System.Console.Out;
        return target switch
        {
            LogTarget.Journal => configuration.WriteTo.Sink(new JournalSink(options.JournalSocketPath, options.SyslogIdentifier)),
            LogTarget.Json => configuration.WriteTo.Sink(new TextLineSink(new RenderedCompactJsonFormatter(), writer)),
            LogTarget.Console => configuration.WriteTo.Sink(
                new TextLineSink(new MessageTemplateTextFormatter(PlainTemplate, CultureInfo.InvariantCulture), writer)),
            _ => throw new ArgumentOutOfRangeException(nameof(target), target, "resolve Auto first"),
        };
    }
}
